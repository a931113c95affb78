#!/usr/bin/env node
// TF.js side of the model build (see README.md). Two commands:
//
//   node tfjs.js extract-nsfwjs DIST_MODEL_DIR OUT_DIR
//       nsfwjs ships each model as browserify bundles (model.min.js: the model.json object,
//       group1-shard*.min.js: the weights as a base64 string). Load them and write a plain TF.js
//       layers model: OUT_DIR/model.json + the binary weight shards.
//
//   node tfjs.js run MODEL_JSON [--backend cpu|wasm] [--preprocess nsfwjs] IN.npy...
//       Run the original model with TF.js (tfjs-core + converter + layers; backend cpu, the default:
//       plain JavaScript kernels, the reference; or wasm: XNNPACK kernels in WebAssembly, ~40x faster
//       on NanoDet, used by the tests) on each float32 .npy input (a batch of one), write each
//       output next to its input as IN.out<k>.npy and print one JSON line per input:
//       {"input": IN, "outputs": [{"name", "path", "shape"}]}.
//       --preprocess nsfwjs takes a raw RGB image (H, W, 3; 0..255) instead and applies nsfwjs' own
//       preprocessing op for op (dist/cjs/core.js infer(): /255, resizeBilinear to 224x224 with
//       alignCorners=true), to measure what framescan's resize changes.
//
// The TF.js packages are resolved from $TFJS_MODULES (default: .cache/node beside this file),
// where build_all.sh installs them with `npm ci` from package-lock.json.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const modulesDir = process.env.TFJS_MODULES || path.join(__dirname, '.cache', 'node');

function tfjs() {
  const req = createRequire(path.join(modulesDir, 'package.json'));
  const tf = req('@tensorflow/tfjs-core');
  req('@tensorflow/tfjs-backend-cpu');
  req('@tensorflow/tfjs-backend-wasm');
  const converter = req('@tensorflow/tfjs-converter');
  const layers = req('@tensorflow/tfjs-layers');
  return { tf, converter, layers };
}

// ------------------------------------------------------------------------------------ .npy

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (descr !== '<f4') throw new Error(`${file}: dtype ${descr}, expected float32 ('<f4')`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order not supported`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const offset = start + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(offset + 4 * i);
  return { shape, data };
}

function writeNpy(file, shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

// ------------------------------------------------------------------------------------ models

function artifacts(modelJson) {
  const dir = path.dirname(modelJson);
  const m = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const weightSpecs = [];
  const shards = [];
  for (const group of m.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return {
    format: m.format,
    generatedBy: m.generatedBy,
    convertedBy: m.convertedBy,
    modelTopology: m.modelTopology,
    signature: m.signature,
    userDefinedMetadata: m.userDefinedMetadata,
    weightSpecs,
    weightData,
  };
}

async function loadModel(modelJson, backend) {
  const { tf, converter, layers } = tfjs();
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} did not initialise`);
  await tf.ready();
  const art = artifacts(modelJson);
  const handler = { load: async () => art };
  if (art.format === 'layers-model') {
    const model = await layers.loadLayersModel(handler);
    return { tf, run: (x) => [model.predict(x)], names: model.outputs.map((o) => o.name) };
  }
  const model = await converter.loadGraphModel(handler);
  const names = model.outputs.map((o) => o.name);
  return { tf, run: (x) => [].concat(model.execute(x, names)), names };
}

function preprocess(tf, kind, img) {
  // img: [H, W, 3] float32 0..255
  if (kind === 'nsfwjs') {
    // nsfwjs dist/cjs/core.js NSFWJS.prototype.infer
    // (tfjs-core alone registers no chained ops: img.toFloat().div(...) is written functionally)
    const normalized = tf.div(tf.cast(img, 'float32'), tf.scalar(255));
    let resized = normalized;
    if (img.shape[0] !== 224 || img.shape[1] !== 224) resized = tf.image.resizeBilinear(normalized, [224, 224], true);
    return tf.reshape(resized, [1, 224, 224, 3]);
  }
  throw new Error(`unknown --preprocess ${kind}`);
}

async function run(args) {
  const modelJson = args.shift();
  let pre = null;
  let backend = 'cpu';
  while (args[0] && args[0].startsWith('--')) {
    const flag = args.shift();
    if (flag === '--preprocess') pre = args.shift();
    else if (flag === '--backend') backend = args.shift();
    else throw new Error(`unknown option ${flag}`);
  }
  const { tf, run: infer, names } = await loadModel(modelJson, backend);
  for (const file of args) {
    const { shape, data } = readNpy(file);
    const outputs = tf.tidy(() => {
      const t = tf.tensor(data, shape, 'float32');
      const x = pre ? preprocess(tf, pre, t) : t;
      return infer(x);
    });
    const report = { input: file, outputs: [] };
    for (let k = 0; k < outputs.length; k++) {
      const out = file.replace(/\.npy$/, `.out${k}.npy`);
      writeNpy(out, outputs[k].shape, outputs[k].dataSync());
      report.outputs.push({ name: names[k], path: out, shape: outputs[k].shape });
    }
    tf.dispose(outputs);
    process.stdout.write(JSON.stringify(report) + '\n');
  }
}

function extractNsfwjs(distModelDir, outDir) {
  const model = require(path.resolve(distModelDir, 'model.min.js'));
  fs.mkdirSync(outDir, { recursive: true });
  const written = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const b64 = require(path.resolve(distModelDir, `${p}.min.js`));
      if (typeof b64 !== 'string') throw new Error(`${p}.min.js does not export a base64 string`);
      fs.writeFileSync(path.join(outDir, p), Buffer.from(b64, 'base64'));
      written.push(p);
    }
  }
  const json = {
    format: 'layers-model',
    generatedBy: `keras v${model.modelTopology.keras_version}`,
    convertedBy: null,
    modelTopology: model.modelTopology,
    weightsManifest: model.weightsManifest,
  };
  fs.writeFileSync(path.join(outDir, 'model.json'), JSON.stringify(json));
  process.stdout.write(JSON.stringify({ model: path.join(outDir, 'model.json'), shards: written }) + '\n');
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'extract-nsfwjs' && args.length === 2) return extractNsfwjs(args[0], args[1]);
  if (cmd === 'run' && args.length >= 2) return run(args);
  process.stderr.write('usage: tfjs.js extract-nsfwjs DIR OUT_DIR | run MODEL_JSON [--backend B] [--preprocess K] IN.npy...\n');
  process.exit(2);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
