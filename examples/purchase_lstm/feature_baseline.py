# SPDX-License-Identifier: Apache-2.0
"""Feature baselines for the CDNOW repeat-purchase task, on the same test customers as the
sequence examples (read from their predictions.csv). Models are chosen by 5-fold CV on the
train + validation customers only; the test split is scored once.

    /usr/bin/python3 examples/purchase_lstm/feature_baseline.py out/purchase_lstm/predictions.csv
"""
import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

data = "examples/data/cdnow/CDNOW_sample.txt"
d = pd.read_csv(data, sep=r"\s+", header=None, names=["master", "id", "date", "q", "amount"], dtype={"id": str})
d["date"] = pd.to_datetime(d.date.astype(str))
days = d.groupby(["id", "date"]).agg(q=("q", "sum"), amount=("amount", "sum")).reset_index()
end = pd.Timestamp("1997-09-30")
cal, hold = days[days.date <= end].sort_values(["id", "date"]), days[days.date > end]
f = cal.groupby("id").agg(n=("date", "size"), first=("date", "min"), last=("date", "max"),
                          total=("amount", "sum"), items=("q", "sum"), first_items=("q", "first"))
f["x"] = f.n - 1
f["recency"] = (f["last"] - f["first"]).dt.days / 7
f["T"] = (end - f["first"]).dt.days / 7
f["since_last"] = (end - f["last"]).dt.days / 7
f["mean"] = f.total / f.n
f["y"] = f.index.isin(hold.id).astype(int)

pred = pd.read_csv(sys.argv[1], dtype={"customer_id": str}).set_index("customer_id")
test, fit = f.loc[pred.index], f.drop(pred.index)
cols = ["x", "recency", "T", "since_last", "mean", "total", "items", "first_items"]
logged = ["x", "mean", "total", "items", "first_items"]
X, Xt = fit[cols].copy(), test[cols].copy()
X[logged], Xt[logged] = np.log1p(X[logged]), np.log1p(Xt[logged])

model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
cv = cross_val_score(model, X, fit.y, cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="roc_auc")
model.fit(X, fit.y)
p = model.predict_proba(Xt)[:, 1]
print(f"logreg_cv_roc_auc: {cv.mean():.4f}")
print(f"logreg_test_roc_auc: {roc_auc_score(test.y, p):.4f}")
print(f"logreg_test_pr_auc: {average_precision_score(test.y, p):.4f}")
print(f"recency_only_test_roc_auc: {roc_auc_score(test.y, test.recency):.4f}")
print(f"frequency_only_test_roc_auc: {roc_auc_score(test.y, test.x):.4f}")
print(f"model_test_roc_auc: {roc_auc_score(pred.bought_in_holdout, pred.p_model):.4f}")
print(f"bgnbd_test_roc_auc: {roc_auc_score(pred.bought_in_holdout, pred.p_bgnbd):.4f}")
