// SPDX-License-Identifier: Apache-2.0
// W4a / W4b ONNX Runtime peer, step 2: the exported W4 model run by onnxruntime-node's CPU provider.
//
//   node w4_ort.mjs --ort ORT_DIR --dir DIR --mode latency|throughput [--threads N] [--reps R]
// ORT_DIR: where `npm install --ignore-scripts onnxruntime-node@1.30.0` was run (node_modules/
// inside); DIR: the files of `bench_w4_lstm_inference --w4_export=DIR` and export_w4.py. Sessions
// run with intraOpNumThreads = N, interOpNumThreads = 1, sequential execution, all graph
// optimizations; inputs are int64 tensors made once over the ids (as uvp and LibTorch take
// pointers to them), and each call is `await session.run(...)`, timed from call to resolution.
// latency (W4a): w4a.onnx, batch 1, seq_len 50; 1,000 warm-up calls, then 20,000 timed calls on
//   the same 256 sequences as uvp's W4a_lstm_uvp; p50/p99 as uvp's benchmark computes them.
// throughput (W4b): w4b.onnx, batches of 1,024 (the same 4 as W4b_lstm_uvp), 2 warm-up batches,
//   then R repetitions (default 5) of 10 batches; sequences/s = 10,240 / (sum of the 10 calls'
//   times), the median over the repetitions (uvp's *_median row); peer_cpu_ms: the process's CPU
//   time (all threads) per batch, the median over the repetitions (uvp's cpu_ms).
// Both modes compare every timed call's logits with uvp's (max_abs_diff=) and time the binding's
// own per-call cost: the p50 of 20,000 calls (after 1,000 warm-up calls) of trivial.onnx (y = x + 1
// on one float) under the same session options (ort_call_overhead_us=). The last line is what
// benchmarks/compare reads:
//   ort=<version> ort_threads=N peer_p50_us=<> peer_p99_us=<> max_abs_diff=<> ort_call_overhead_us=<>
//   ort=<version> ort_threads=N peer_seq_per_s=<> peer_ms=<per batch> peer_cpu_ms=<per batch> max_abs_diff=<>
//     ort_call_overhead_us=<>
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const SEQ_LEN = 50;

function fail(message) {
  process.stderr.write(`w4_ort.mjs: ${message}\n`);
  process.exit(2);
}

const args = { threads: '1', reps: '5' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i];
  if (!['--ort', '--dir', '--mode', '--threads', '--reps'].includes(key) || i + 1 >= process.argv.length) {
    fail(`unknown or incomplete argument '${key}' (usage: --ort ORT_DIR --dir DIR --mode latency|throughput ` +
         '[--threads N] [--reps R])');
  }
  args[key.slice(2)] = process.argv[i + 1];
}
if (!args.ort || !args.dir) fail('--ort and --dir are required');
if (args.mode !== 'latency' && args.mode !== 'throughput') fail(`--mode is '${args.mode}', expected latency or throughput`);
const threads = Number(args.threads), reps = Number(args.reps);
if (!Number.isInteger(threads) || threads < 1) fail(`--threads is '${args.threads}', expected a positive integer`);
if (!Number.isInteger(reps) || reps < 1) fail(`--reps is '${args.reps}', expected a positive integer`);

let ort;
try {
  ort = createRequire(join(resolve(args.ort), 'package.json'))('onnxruntime-node');
} catch (e) {
  fail(`cannot load onnxruntime-node from ${args.ort}: ${e.message}`);
}

const options = {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

// A little-endian raw array of DIR as a typed array of `Type` (a copy, suitably aligned).
function readArray(name, Type) {
  const bytes = readFileSync(join(args.dir, name));
  if (bytes.length % Type.BYTES_PER_ELEMENT) fail(`${name}: ${bytes.length} bytes, not whole elements`);
  const out = new Type(bytes.length / Type.BYTES_PER_ELEMENT);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

// The sequences of `prefix` (w4a or w4b) cut into `batch`-row input tensors, and uvp's logits.
function loadData(prefix, batch) {
  const ids = readArray(`${prefix}_ids.i64`, BigInt64Array);
  const want = readArray(`${prefix}_uvp.f32`, Float32Array);
  if (ids.length !== want.length * SEQ_LEN || want.length % batch) {
    fail(`${prefix}: ${ids.length} ids and ${want.length} logits do not make batches of ${batch} x ${SEQ_LEN}`);
  }
  const inputs = [];
  for (let k = 0; k < want.length / batch; ++k) {
    inputs.push(new ort.Tensor('int64', ids.subarray(k * batch * SEQ_LEN, (k + 1) * batch * SEQ_LEN), [batch, SEQ_LEN]));
  }
  return { inputs, want, batch };
}

const now = () => process.hrtime.bigint();
const micros = (t0, t1) => Number(t1 - t0) / 1e3;

// uvp's percentile: the element at rank round(p * (n - 1)) of the sorted values.
function percentile(values, p) {
  const v = Float64Array.from(values).sort();
  return v[Math.min(v.length - 1, Math.floor(p * (v.length - 1) + 0.5))];
}

function median(values) {
  const v = Float64Array.from(values).sort(), n = v.length;
  return n % 2 ? v[(n - 1) / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Times `count` calls of f(k) after `warmup` calls; returns the per-call microseconds.
async function timeCalls(f, warmup, count) {
  let k = 0;
  for (; k < warmup; ++k) await f(k);
  const us = new Float64Array(count);
  for (let i = 0; i < count; ++i, ++k) {
    const t0 = now();
    await f(k);
    us[i] = micros(t0, now());
  }
  return us;
}

async function callOverhead() {
  const session = await ort.InferenceSession.create(join(args.dir, 'trivial.onnx'), options);
  const x = new ort.Tensor('float32', new Float32Array([1]), [1]);
  let sink = 0;
  const us = await timeCalls(async () => { sink += (await session.run({ x })).y.data[0]; }, 1000, 20000);
  if (sink !== 2 * 20000 + 2 * 1000) fail(`trivial.onnx computed ${sink}, not x + 1`);
  await session.release();
  return percentile(us, 0.5);
}

async function main() {
  const latency = args.mode === 'latency';
  const data = latency ? loadData('w4a', 1) : loadData('w4b', 1024);
  const session = await ort.InferenceSession.create(join(args.dir, latency ? 'w4a.onnx' : 'w4b.onnx'), options);
  const batches = data.inputs.length;
  let maxDiff = 0, last = null;
  // One scoring call on batch k % batches; the check against uvp's logits runs after the clock stops.
  const score = async (k) => { last = (await session.run({ ids: data.inputs[k % batches] })).logit.data; };
  const check = (k) => {
    const off = (k % batches) * data.batch;
    if (last.length !== data.batch) fail(`the model returned ${last.length} logits for a batch of ${data.batch}`);
    for (let b = 0; b < data.batch; ++b) {
      const d = Math.abs(last[b] - data.want[off + b]);
      maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
    }
  };
  const warmup = latency ? 1000 : 2, perRep = latency ? 20000 : 10, repetitions = latency ? 1 : reps;
  let k = 0;
  for (; k < warmup; ++k) { await score(k); check(k); }
  const us = [], cpuMs = [];
  for (let r = 0; r < repetitions; ++r) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < perRep; ++i, ++k) {
      const t0 = now();
      await score(k);
      us.push(micros(t0, now()));
      check(k);
    }
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1e3 / perRep);
  }
  await session.release();
  const overhead = await callOverhead();
  let line = `ort=${ort.env.versions.node ?? 'unknown'} ort_threads=${threads} `;
  if (latency) {
    line += `peer_p50_us=${percentile(us, 0.5).toFixed(3)} peer_p99_us=${percentile(us, 0.99).toFixed(3)}`;
  } else {
    const rates = [], ms = [];
    for (let r = 0; r < repetitions; ++r) {
      const s = us.slice(r * perRep, (r + 1) * perRep).reduce((a, b) => a + b, 0) / 1e6;
      rates.push(perRep * data.batch / s);
      ms.push(1e3 * s / perRep);
    }
    line += `peer_seq_per_s=${median(rates).toFixed(1)} peer_ms=${median(ms).toFixed(3)} ` +
            `peer_cpu_ms=${median(cpuMs).toFixed(3)}`;
  }
  console.log(`${line} max_abs_diff=${maxDiff.toExponential(2)} ort_call_overhead_us=${overhead.toFixed(3)}`);
}

main().catch((e) => fail(e.stack ?? String(e)));
