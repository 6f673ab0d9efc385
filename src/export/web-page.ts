/**
 * The static page of `pythia export web`: index.html, style.css and app.js (browser JavaScript,
 * an ES module). app.js imports onnxruntime-web's wasm bundle and @huggingface/tokenizers from
 * `vendor/`, and our seeded generator (src/util/prng.ts, compiled) from `lib/`, so the page's
 * sampling draws the same numbers as `pythia generate --seed`. Its attention panel computes every
 * head's pattern of a typed text with each checkpoint's attention graph (attention-model.ts) and
 * draws it with the report's viewer (src/report/attention-viewer.ts, written beside as
 * attention-viewer.js). Kept as strings so that the compiled package carries them without a build
 * step; they hold no backticks.
 */
import { ATTENTION_MAX_TOKENS, DEFAULT_ATTENTION_TEXT } from '../results/attention-study.js';

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pythia in the browser</title>
<link rel="stylesheet" href="style.css">
<link rel="icon" href="data:,">
</head>
<body>
<h1>Pythia in the browser</h1>
<p class="lead">Checkpoints exported by <code>pythia export web</code>, run on this machine with onnxruntime-web. Nothing leaves the page.</p>
<form id="controls">
  <label>Checkpoint <select id="model-a"></select></label>
  <label>Compare with <select id="model-b"></select></label>
  <label class="wide">Prompt <textarea id="prompt" rows="3">The</textarea></label>
  <label>New tokens <input id="max-new-tokens" type="number" min="1" value="20"></label>
  <label>Temperature <input id="temperature" type="number" min="0" step="0.1" value="0.8"></label>
  <label>Top-k <input id="top-k" type="number" min="0" value="0"></label>
  <label>Seed <input id="seed" type="number" min="0" value="0"></label>
  <label class="check"><input id="stop-at-eos" type="checkbox" checked> stop at end of text</label>
  <button id="run" type="submit">Generate</button>
</form>
<p id="status" data-state="starting">starting&hellip;</p>
<div id="results"></div>
<section id="attention-panel">
<h2>Attention</h2>
<p class="lead">Every head's attention pattern on a text (its first ${ATTENTION_MAX_TOKENS} tokens, as the attention study reads), computed here for each checkpoint in turn as you pick its size and step.
Each small square is one head (rows: destination token, columns: source token); pick one to draw it large, and point at a token (click to keep it) to see what it attends to.</p>
<form id="attention-controls">
  <label class="wide">Text <textarea id="attention-text" rows="2">${DEFAULT_ATTENTION_TEXT.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</textarea></label>
  <button id="attention-run" type="submit">Show attention</button>
</form>
<div id="attention" class="attention-viewer"></div>
</section>
<script src="attention-viewer.js"></script>
<script>
  if (location.protocol === 'file:') {
    document.getElementById('status').textContent =
      'Browsers do not load modules or WebAssembly from file:// pages: serve this folder over HTTP, for example ' +
      'python3 -m http.server --directory <this folder>, then open http://localhost:8000/';
    document.getElementById('status').dataset.state = 'error';
  }
</script>
<script type="module" src="app.js"></script>
</body>
</html>
`;

export const STYLE_CSS = `body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem; color: #1d1d1f; }
h1 { margin-bottom: 0.2rem; }
.lead { color: #555; margin-top: 0; }
#controls, #attention-controls { display: flex; flex-wrap: wrap; gap: 0.6rem 1rem; align-items: end; }
#controls label, #attention-controls label { display: flex; flex-direction: column; font-size: 0.85rem; color: #444; }
#controls label.wide, #attention-controls label.wide { flex-basis: 100%; }
#controls label.check { flex-direction: row; align-items: center; gap: 0.3rem; }
textarea { font: inherit; width: 100%; box-sizing: border-box; }
input[type=number] { width: 6rem; }
button { font: inherit; padding: 0.35rem 1.2rem; }
#status { color: #555; }
#status[data-state=error] { color: #b00020; }
#results { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1.5rem; }
.column h2 { margin-bottom: 0; }
.meta, .prompt-ids { color: #666; font-size: 0.8rem; margin: 0.2rem 0; }
.text { white-space: pre-wrap; background: #f5f5f7; padding: 0.4rem 0.6rem; border-radius: 4px; }
.tokens { display: flex; flex-wrap: wrap; gap: 3px; }
.token { display: inline-flex; flex-direction: column; align-items: center; padding: 2px 4px; border-radius: 3px;
  background: rgba(52, 120, 246, calc(0.08 + 0.5 * var(--p))); font-family: ui-monospace, monospace; font-size: 0.85rem; }
.token small { font-family: system-ui, sans-serif; font-size: 0.65rem; color: #333; }
`;

export const APP_JS = String.raw`// Pythia in the browser: exported checkpoints run with onnxruntime-web (wasm), tokenised with
// @huggingface/tokenizers; greedy and sampled continuations with per-token probabilities.
import * as ort from './vendor/ort.wasm.min.mjs';
import { Tokenizer } from './vendor/tokenizers.min.mjs';
import { Prng } from './lib/util/prng.js';

ort.env.wasm.wasmPaths = new URL('./vendor/', location.href).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);
const loaded = new Map();
const tokenizers = new Map();
const attentionSessions = new Map();

function setStatus(state, text) {
  const status = $('status');
  status.dataset.state = state;
  status.textContent = text;
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(url + ': HTTP ' + response.status);
  return response.json();
}

async function tokenizerOf(entry) {
  if (!tokenizers.has(entry.id)) {
    const base = new URL(entry.path + '/', location.href);
    tokenizers.set(entry.id, Promise.all([
      fetchJson(new URL('tokenizer.json', base)),
      fetchJson(new URL('tokenizer_config.json', base)),
    ]).then(([json, config]) => new Tokenizer(json, config)));
  }
  return tokenizers.get(entry.id);
}

async function load(entry) {
  if (loaded.has(entry.id)) return loaded.get(entry.id);
  const base = new URL(entry.path + '/', location.href);
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  if (entry.externalData) {
    options.externalData = [{ path: entry.externalData, data: new URL('onnx/' + entry.externalData, base).href }];
  }
  const session = await ort.InferenceSession.create(new URL('onnx/' + entry.file, base).href, options);
  const model = { entry, session, tokenizer: await tokenizerOf(entry) };
  loaded.set(entry.id, model);
  return model;
}

/** Runs new tokens after past cached positions; returns [new, vocab] logits and the cache. */
async function run(model, ids, cache) {
  const c = model.entry.config;
  const past = cache ? cache[0].dims[2] : 0;
  const n = ids.length;
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past + n).fill(1n), [1, past + n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(past + i)), [1, n]),
  };
  for (let i = 0; i < c.numLayers; i++) {
    for (const [j, part] of ['key', 'value'].entries()) {
      feeds['past_key_values.' + i + '.' + part] = cache
        ? cache[2 * i + j]
        : new ort.Tensor('float32', new Float32Array(0), [1, c.numHeads, 0, c.headDim]);
    }
  }
  const out = await model.session.run(feeds);
  const next = [];
  for (let i = 0; i < c.numLayers; i++) next.push(out['present.' + i + '.key'], out['present.' + i + '.value']);
  return { logits: out.logits.data, cache: next };
}

function attentionSession(entry) {
  if (!attentionSessions.has(entry.id)) {
    const base = new URL(entry.path + '/', location.href);
    const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
    if (entry.attention.externalData) {
      options.externalData = [{ path: entry.attention.externalData, data: new URL('onnx/' + entry.attention.externalData, base).href }];
    }
    attentionSessions.set(entry.id, ort.InferenceSession.create(new URL('onnx/' + entry.attention.file, base).href, options));
  }
  return attentionSessions.get(entry.id);
}

/** Every head's pattern [layer, head, dest, src] of the text's first tokens, as the attention study records them. */
async function attentionPatterns(entry, text) {
  const c = entry.config;
  const tokenizer = await tokenizerOf(entry);
  const ids = tokenizer.encode(text).ids.slice(0, Math.min(entry.attention.maxTokens, c.maxPositions));
  if (ids.length === 0) throw new Error('the text has no tokens');
  if (ids.some((id) => id >= c.vocabSize)) throw new Error('the text has tokens outside ' + entry.label + "'s vocabulary");
  const n = ids.length;
  const bias = new Float32Array(n * n);
  for (let t = 0; t < n; t++) bias.fill(-Infinity, t * n + t + 1, (t + 1) * n);
  const session = await attentionSession(entry);
  const out = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(i)), [1, n]),
    attention_bias: new ort.Tensor('float32', bias, [1, 1, n, n]),
  });
  const weights = new Float32Array(c.numLayers * c.numHeads * n * n);
  for (let l = 0; l < c.numLayers; l++) weights.set(out['blocks.' + l + '.attn.hook_pattern'].data, l * c.numHeads * n * n);
  const tokens = ids.map((id) => (tokenizer.id_to_token(id) === undefined ? '⟨' + id + '⟩' : tokenizer.decode([id], { skip_special_tokens: false })));
  return { tokens, ids, layers: c.numLayers, heads: c.numHeads, weights };
}

function showAttention(entries) {
  const text = $('attention-text').value;
  const runs = entries.filter((e) => e.attention).map((e) => ({
    size: e.size,
    step: e.step,
    label: e.step === null ? e.label : String(e.step),
    compute: () => attentionPatterns(e, text),
  }));
  if (runs.length === 0) {
    $('attention').textContent = 'These checkpoints were exported without their attention graphs (--no-attention).';
    return Promise.resolve();
  }
  return window.pythiaAttentionViewer($('attention'), runs);
}

function softmax(logits, offset, vocab) {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]);
  const p = new Float64Array(vocab);
  let total = 0;
  for (let v = 0; v < vocab; v++) total += p[v] = Math.exp(logits[offset + v] - max);
  for (let v = 0; v < vocab; v++) p[v] /= total;
  return p;
}

/** The token choice of pythia generate: argmax at temperature 0, else seeded top-k sampling. */
function pick(logits, offset, vocab, temperature, topK, rng) {
  if (temperature <= 0) {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[offset + v] > logits[offset + best]) best = v;
    return best;
  }
  let candidates = Array.from({ length: vocab }, (_, v) => v);
  if (topK > 0 && topK < vocab) {
    candidates = candidates.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b).slice(0, topK);
  }
  const maxLogit = Math.max(...candidates.map((v) => logits[offset + v]));
  const weights = candidates.map((v) => Math.exp((logits[offset + v] - maxLogit) / temperature));
  let u = rng.float() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < candidates.length; i++) {
    u -= weights[i];
    if (u < 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}

/** Continues prompt; each new token comes with its probability under the model (temperature 1). */
async function generate(model, prompt, settings) {
  const vocab = model.entry.config.vocabSize;
  const eos = model.entry.config.eosTokenId;
  const rng = new Prng(settings.seed);
  const tokens = [];
  let step = await run(model, prompt, undefined);
  let offset = (prompt.length - 1) * vocab;
  for (let i = 0; i < settings.maxNewTokens; i++) {
    const id = pick(step.logits, offset, vocab, settings.temperature, settings.topK, rng);
    tokens.push({ id, p: softmax(step.logits, offset, vocab)[id] });
    if (settings.stopAtEos && id === eos) break;
    if (i + 1 === settings.maxNewTokens) break;
    step = await run(model, [id], step.cache);
    offset = 0;
  }
  return tokens;
}

/** Probability of each token of continuation after prompt, in one pass; undefined where the model cannot read them. */
async function score(model, prompt, continuation) {
  const vocab = model.entry.config.vocabSize;
  const ids = [...prompt, ...continuation];
  if (continuation.length === 0 || ids.length > model.entry.config.maxPositions || ids.some((id) => id >= vocab)) return undefined;
  const { logits } = await run(model, ids, undefined);
  return continuation.map((id, t) => softmax(logits, (prompt.length - 1 + t) * vocab, vocab)[id]);
}

function tokenText(model, id) {
  if (model.tokenizer.id_to_token(id) === undefined) return '\u27e8' + id + '\u27e9';
  const text = model.tokenizer.decode([id], { skip_special_tokens: false });
  return text.replace(/\n/g, '\u21b5').replace(/ /g, '\u00b7') || '\u27e8' + id + '\u27e9';
}

function percent(p) {
  return p >= 0.995 ? '100%' : p >= 0.1 ? (100 * p).toFixed(0) + '%' : p >= 0.001 ? (100 * p).toFixed(1) + '%' : p.toExponential(0);
}

function renderTokens(model, mode, tokens, otherProbs, otherLabel) {
  const box = document.createElement('div');
  box.className = 'continuation';
  box.dataset.mode = mode;
  box.dataset.ids = tokens.map((t) => t.id).join(',');
  const text = document.createElement('p');
  text.className = 'text';
  text.textContent = model.tokenizer.decode(tokens.map((t) => t.id).filter((id) => model.tokenizer.id_to_token(id) !== undefined));
  box.append(text);
  const strip = document.createElement('div');
  strip.className = 'tokens';
  tokens.forEach((t, i) => {
    const span = document.createElement('span');
    span.className = 'token';
    span.dataset.id = String(t.id);
    span.dataset.p = String(t.p);
    if (otherProbs) span.dataset.otherP = String(otherProbs[i]);
    span.style.setProperty('--p', String(t.p));
    const label = document.createElement('b');
    label.textContent = tokenText(model, t.id);
    const prob = document.createElement('small');
    prob.textContent = percent(t.p) + (otherProbs ? ' \u00b7 ' + percent(otherProbs[i]) : '');
    span.title = 'id ' + t.id + ': p = ' + t.p.toPrecision(4) + (otherProbs ? ', under ' + otherLabel + ': ' + otherProbs[i].toPrecision(4) : '');
    span.append(label, prob);
    strip.append(span);
  });
  box.append(strip);
  return box;
}

function settingsFromForm() {
  const number = (id, fallback) => {
    const v = Number($(id).value);
    return Number.isFinite(v) ? v : fallback;
  };
  return {
    maxNewTokens: Math.max(1, Math.floor(number('max-new-tokens', 20))),
    temperature: Math.max(0, number('temperature', 0.8)),
    topK: Math.max(0, Math.floor(number('top-k', 0))),
    seed: Math.max(0, Math.floor(number('seed', 0))) >>> 0,
    stopAtEos: $('stop-at-eos').checked,
  };
}

async function generateAll(entries) {
  const settings = settingsFromForm();
  const text = $('prompt').value;
  const chosen = [$('model-a').value, $('model-b').value].filter((id) => id).map((id) => entries.find((e) => e.id === id));
  const unique = chosen.filter((e, i) => chosen.indexOf(e) === i);
  const results = $('results');
  results.replaceChildren();
  const runs = [];
  for (const entry of unique) {
    setStatus('busy', 'loading ' + entry.label + '\u2026');
    const model = await load(entry);
    const prompt = model.tokenizer.encode(text).ids;
    if (prompt.length === 0) throw new Error('the prompt is empty');
    const room = entry.config.maxPositions - prompt.length;
    if (room < 1) throw new Error('the prompt (' + prompt.length + ' tokens) fills ' + entry.label + "'s context");
    const limited = { ...settings, maxNewTokens: Math.min(settings.maxNewTokens, room) };
    setStatus('busy', 'generating with ' + entry.label + '\u2026');
    const greedy = await generate(model, prompt, { ...limited, temperature: 0 });
    const sampled = await generate(model, prompt, limited);
    runs.push({ entry, model, prompt, greedy, sampled });
  }
  for (const r of runs) {
    const other = runs.find((o) => o !== r);
    // Cross-scoring needs the same prompt ids: checkpoints with different tokenizers are shown side by side only.
    const comparable = other && other.prompt.join(',') === r.prompt.join(',');
    const otherProbs = comparable ? await score(other.model, other.prompt, r.greedy.map((t) => t.id)) : undefined;
    const column = document.createElement('section');
    column.className = 'column';
    column.dataset.model = r.entry.id;
    const c = r.entry.config;
    const title = document.createElement('h2');
    title.textContent = r.entry.label;
    const meta = document.createElement('p');
    meta.className = 'meta';
    meta.textContent = c.parameters.toLocaleString('en-US') + ' parameters \u00b7 ' + c.numLayers + ' layers \u00b7 d=' + c.hiddenSize +
      ' \u00b7 ' + r.entry.dtype;
    const promptIds = document.createElement('p');
    promptIds.className = 'prompt-ids';
    promptIds.dataset.ids = r.prompt.join(',');
    promptIds.textContent = 'prompt: ' + r.prompt.length + ' tokens (' + r.prompt.join(' ') + ')';
    const greedyTitle = document.createElement('h3');
    greedyTitle.textContent = otherProbs ? 'Greedy (probability here \u00b7 under ' + other.entry.label + ')' : 'Greedy';
    const sampledTitle = document.createElement('h3');
    sampledTitle.textContent = 'Sampled (temperature ' + settings.temperature + ', top-k ' + (settings.topK || 'all') + ', seed ' + settings.seed + ')';
    column.append(title, meta, promptIds, greedyTitle, renderTokens(r.model, 'greedy', r.greedy, otherProbs, other?.entry.label),
      sampledTitle, renderTokens(r.model, 'sampled', r.sampled));
    results.append(column);
  }
}

async function main() {
  const entries = await fetchJson('models.json');
  for (const [select, withNone] of [[$('model-a'), false], [$('model-b'), true]]) {
    if (withNone) select.append(new Option('(none)', ''));
    for (const e of entries) select.append(new Option(e.label + ' (' + e.config.parameters.toLocaleString('en-US') + ' parameters)', e.id));
  }
  if (entries.length > 1) $('model-b').value = entries[1].id;
  $('attention-controls').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('attention-run').disabled = true;
    try {
      await showAttention(entries);
    } finally {
      $('attention-run').disabled = false;
    }
  });
  $('controls').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('run').disabled = true;
    try {
      await generateAll(entries);
      setStatus('done', 'done');
    } catch (e) {
      setStatus('error', String(e && e.message ? e.message : e));
    } finally {
      $('run').disabled = false;
    }
  });
  setStatus('ready', entries.length + ' checkpoint' + (entries.length === 1 ? '' : 's') + ' listed; nothing is loaded until you generate');
}

main().catch((e) => setStatus('error', String(e && e.message ? e.message : e)));
`;
