#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# scikit-learn's LogisticRegression on exactly the rows and features the example used, for the
# comparison in README.md. Run the example first, then:
#   /usr/bin/python3 examples/purchase_intent_logreg/sklearn_reference.py [out/purchase_intent_logreg]
# (needs Debian's python3-sklearn and python3-pandas)
import sys, os
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.metrics import roc_auc_score, average_precision_score, f1_score, accuracy_score, log_loss

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else "out/purchase_intent_logreg"
data = pd.read_csv(os.path.join(here, "..", "data", "online_shoppers_intention", "online_shoppers_intention.csv"),
                   dtype=str, keep_default_na=False)
split = pd.read_csv(os.path.join(out, "split.csv"))
numeric = ["Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
           "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues", "SpecialDay"]
categorical = ["Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType", "Weekend"]
y = (data["Revenue"] == "TRUE").astype(float).values
fit = split[split.set == "fit"].row.values
test = split[split.set == "test"].row.values

scaler = StandardScaler().fit(data.loc[fit, numeric].astype(float))
enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(data.loc[fit, categorical])
def features(rows):
    return np.hstack([scaler.transform(data.loc[rows, numeric].astype(float)), enc.transform(data.loc[rows, categorical])])
Xf, Xt = features(fit), features(test)
m = LogisticRegression(C=1.0, max_iter=10000).fit(Xf, y[fit])
p = m.predict_proba(Xt)[:, 1]
print(f"sklearn_accuracy: {accuracy_score(y[test], p >= 0.5):.4f}")
print(f"sklearn_f1: {f1_score(y[test], p >= 0.5):.4f}")
print(f"sklearn_roc_auc: {roc_auc_score(y[test], p):.4f}")
print(f"sklearn_pr_auc: {average_precision_score(y[test], p):.4f}")
print(f"sklearn_log_loss: {log_loss(y[test], p):.4f}")
