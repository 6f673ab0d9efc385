/**
 * The attention viewer, in the spirit of CircuitsVis's attention-heads view: a text's attention
 * patterns for every head of a checkpoint, as a grid of small heatmaps (one per layer and head);
 * choosing a head draws its pattern large, and pointing at a token (click to keep it) shows what that
 * token attends to: each earlier token coloured by its weight, with the weight written under it.
 * Size and step selectors pick the checkpoint. The browser code (ATTENTION_VIEWER_JS, a classic
 * script defining `pythiaAttentionViewer(root, runs)`) is shared by the report, which carries the
 * attention study's rows inline, and by `pythia export web`'s page, which computes patterns live.
 * It holds no backticks, so it can be kept as a string and written into either page.
 */
import type { ReportData } from './data.js';

/** One checkpoint's patterns on the text, as the browser code takes them. */
export interface AttentionRun {
  model: string;
  size: string;
  step: number;
  /** Each token's text, in order. */
  tokens: string[];
  ids: number[];
  layers: number;
  heads: number;
  /** [layer, head, dest, src], row-major; 0 where src > dest. */
  weights: number[];
}

/** The report carries each weight as an integer number of these (1e-4, far below what a colour shows). */
const UNITS = 10_000;

/** The study's rows (the attentionPatterns and attentionTokens queries) as one run per checkpoint, in `models` order. */
export function attentionRuns(
  patterns: readonly Record<string, unknown>[],
  tokens: readonly Record<string, unknown>[],
  models: readonly string[] = [],
): AttentionRun[] {
  const runs = new Map<string, AttentionRun>();
  const key = (r: Record<string, unknown>) => `${r.model as string}\u0000${r.step as number}`;
  for (const r of tokens) {
    let run = runs.get(key(r));
    if (!run) {
      run = {
        model: r.model as string,
        size: r.size as string,
        step: r.step as number,
        tokens: [],
        ids: [],
        layers: 0,
        heads: 0,
        weights: [],
      };
      runs.set(key(r), run);
    }
    run.tokens[r.position as number] = r.text as string;
    run.ids[r.position as number] = r.token_id as number;
  }
  const rowsOf = new Map<AttentionRun, Record<string, unknown>[]>();
  for (const r of patterns) {
    const run = runs.get(key(r));
    if (!run) continue;
    run.layers = Math.max(run.layers, (r.layer as number) + 1);
    run.heads = Math.max(run.heads, (r.head as number) + 1);
    rowsOf.set(run, [...(rowsOf.get(run) ?? []), r]);
  }
  for (const [run, rows] of rowsOf) {
    const n = run.tokens.length;
    run.weights = new Array<number>(run.layers * run.heads * n * n).fill(0);
    for (const r of rows) {
      const at =
        (((r.layer as number) * run.heads + (r.head as number)) * n + (r.dest as number)) * n + (r.src as number);
      run.weights[at] = r.weight as number;
    }
  }
  const order = (m: string) => (models.includes(m) ? models.indexOf(m) : models.length);
  return [...runs.values()]
    .filter((r) => r.layers > 0)
    .sort(
      (a, b) => order(a.model) - order(b.model) || (a.model < b.model ? -1 : a.model > b.model ? 1 : a.step - b.step),
    );
}

export const ATTENTION_VIEWER_CSS = `.attention-viewer { margin: 1.2em 0; }
.attn-controls { display: flex; flex-wrap: wrap; gap: 0.5em 1.2em; align-items: center; font-size: 0.9em; margin-bottom: 0.6em; }
.attn-body { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
.attn-heads { display: grid; gap: 4px; align-items: center; }
.attn-layer-label { font-size: 0.75em; color: #555; padding-right: 4px; white-space: nowrap; }
.attn-head { padding: 2px; border: 2px solid transparent; background: none; cursor: pointer; display: flex; flex-direction: column; align-items: center; font-size: 0.65em; color: #555; }
.attn-head[aria-pressed=true] { border-color: #3478f6; border-radius: 3px; }
.attn-head canvas { width: 56px; height: 56px; image-rendering: pixelated; border: 1px solid #ddd; }
.attn-focus { flex: 1 1 24rem; min-width: 16rem; }
.attn-focus canvas.attn-pattern { width: 220px; height: 220px; image-rendering: pixelated; border: 1px solid #ddd; }
.attn-caption { font-size: 0.9em; color: #333; margin: 0.2em 0 0.5em; }
.attn-tokens { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 0.6em; }
.attn-token { display: inline-flex; flex-direction: column; align-items: center; padding: 2px 4px; border-radius: 3px; cursor: pointer;
  border: 1px solid transparent; font-family: ui-monospace, monospace; font-size: 0.85em; white-space: pre; }
.attn-token[data-dest=true] { border-color: #c0392b; }
.attn-token small { font-family: system-ui, sans-serif; font-size: 0.7em; color: #333; min-height: 1.1em; }
.attn-status { color: #555; font-size: 0.9em; }
.attn-status[data-state=error] { color: #b00020; }
`;

export const ATTENTION_VIEWER_JS = String.raw`(function () {
  'use strict';
  // White to blue as a weight goes from 0 to 1.
  var BLUE = [52, 120, 246];
  function shade(w) {
    return BLUE.map(function (c) { return Math.round(255 - w * (255 - c)); });
  }
  function element(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /** A token as written: line breaks and tabs as arrows, a token of spaces alone as dots, none as ∅. */
  function shown(text) {
    if (/^ +$/.test(text)) return text.replace(/ /g, '\u00b7');
    return text.replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5') || '\u2205';
  }
  function weight(run, layer, head, dest, src) {
    var n = run.tokens.length;
    return run.weights[((layer * run.heads + head) * n + dest) * n + src];
  }
  /** The head's pattern, one pixel per (dest, src); the destination row outlined in red when given. */
  function draw(canvas, run, layer, head, dest) {
    var n = run.tokens.length;
    var scale = dest === undefined ? 1 : Math.max(1, Math.floor(220 / n));
    canvas.width = n * scale;
    canvas.height = n * scale;
    var context = canvas.getContext('2d');
    for (var d = 0; d < n; d++) {
      for (var s = 0; s < n; s++) {
        var c = shade(weight(run, layer, head, d, s));
        context.fillStyle = 'rgb(' + c.join(',') + ')';
        context.fillRect(s * scale, d * scale, scale, scale);
      }
    }
    if (dest !== undefined) {
      context.strokeStyle = '#c0392b';
      context.lineWidth = 1;
      context.strokeRect(0.5, dest * scale + 0.5, n * scale - 1, scale - 1);
    }
  }

  /**
   * Draws the viewer into root over runs, each {model, size, step, label?, layers, heads, tokens,
   * weights} or, for patterns computed on demand, {size, step, label?, compute} where compute()
   * resolves to {tokens, layers, heads, weights}. root.dataset.state is 'busy' while computing,
   * then 'done' or 'error'; root.pythiaAttention holds what is shown.
   */
  function pythiaAttentionViewer(root, runs) {
    root.replaceChildren();
    root.dataset.state = 'busy';
    var state = { run: null, layer: 0, head: 0, dest: 0, pinned: 0 };
    root.pythiaAttention = state;
    var controls = element('div', 'attn-controls');
    var sizeLabel = element('label', null, 'size ');
    var sizeSelect = element('select', 'attn-size');
    sizeLabel.append(sizeSelect);
    var stepLabel = element('label', null, 'step ');
    var stepSelect = element('select', 'attn-step');
    stepLabel.append(stepSelect);
    var status = element('span', 'attn-status');
    controls.append(sizeLabel, stepLabel, status);
    var body = element('div', 'attn-body');
    var heads = element('div', 'attn-heads');
    var focus = element('div', 'attn-focus');
    var caption = element('p', 'attn-caption');
    var pattern = element('canvas', 'attn-pattern');
    var tokens = element('div', 'attn-tokens');
    focus.append(caption, pattern, tokens);
    body.append(heads, focus);
    root.append(controls, body);

    var sizes = [];
    runs.forEach(function (r) { if (sizes.indexOf(r.size) < 0) sizes.push(r.size); });
    sizes.forEach(function (s) { sizeSelect.append(new Option(s, s)); });

    function setStatus(value, text) {
      root.dataset.state = value;
      status.dataset.state = value;
      status.textContent = text;
    }
    function stepOptions() {
      stepSelect.replaceChildren();
      runs.forEach(function (r, i) {
        if (r.size !== sizeSelect.value) return;
        var label = r.label || String(r.step) + (r.model && r.model !== r.size ? ' (' + r.model + ')' : '');
        stepSelect.append(new Option(label, String(i)));
      });
    }
    function focusHead() {
      var run = state.run;
      heads.querySelectorAll('.attn-head').forEach(function (b) {
        b.setAttribute('aria-pressed', String(Number(b.dataset.layer) === state.layer && Number(b.dataset.head) === state.head));
      });
      draw(pattern, run, state.layer, state.head, state.dest);
      caption.textContent = 'Layer ' + state.layer + ', head ' + state.head + ': what token ' + state.dest + ' (\u201c' +
        shown(run.tokens[state.dest]) + '\u201d) attends to. Rows of the pattern are destinations, columns sources.';
      tokens.querySelectorAll('.attn-token').forEach(function (t) {
        var src = Number(t.dataset.position);
        var w = src <= state.dest ? weight(run, state.layer, state.head, state.dest, src) : 0;
        t.dataset.weight = String(w);
        t.dataset.dest = String(src === state.dest);
        t.style.background = src <= state.dest ? 'rgb(' + shade(w).join(',') + ')' : 'transparent';
        t.querySelector('small').textContent = src <= state.dest ? w.toFixed(3) : '';
        t.title = 'position ' + src + (run.ids ? ', id ' + run.ids[src] : '') + (src <= state.dest ? ': weight ' + w : '');
      });
    }
    function build() {
      var run = state.run;
      heads.replaceChildren();
      heads.style.gridTemplateColumns = 'auto repeat(' + run.heads + ', auto)';
      for (var l = 0; l < run.layers; l++) {
        heads.append(element('span', 'attn-layer-label', 'layer ' + l));
        for (var h = 0; h < run.heads; h++) {
          var button = element('button', 'attn-head');
          button.type = 'button';
          button.dataset.layer = String(l);
          button.dataset.head = String(h);
          button.title = 'layer ' + l + ', head ' + h;
          var thumb = element('canvas');
          draw(thumb, run, l, h);
          button.append(thumb, element('span', null, 'L' + l + 'H' + h));
          button.addEventListener('click', function (e) {
            state.layer = Number(e.currentTarget.dataset.layer);
            state.head = Number(e.currentTarget.dataset.head);
            focusHead();
          });
          heads.append(button);
        }
      }
      tokens.replaceChildren();
      run.tokens.forEach(function (text, i) {
        var t = element('span', 'attn-token');
        t.dataset.position = String(i);
        t.append(element('b', null, shown(text)), element('small'));
        t.addEventListener('mouseenter', function () { state.dest = i; focusHead(); });
        t.addEventListener('mouseleave', function () { state.dest = state.pinned; focusHead(); });
        t.addEventListener('click', function () { state.pinned = i; state.dest = i; focusHead(); });
        tokens.append(t);
      });
      focusHead();
    }
    async function show() {
      var run = runs[Number(stepSelect.value)];
      if (!run) return;
      try {
        if (!run.weights) {
          setStatus('busy', 'computing ' + (run.label || run.size + ' step ' + run.step) + '\u2026');
          Object.assign(run, await run.compute());
        }
      } catch (e) {
        setStatus('error', String(e && e.message ? e.message : e));
        return;
      }
      var n = run.tokens.length;
      var last = !state.run || state.run.tokens.length !== n;
      state.run = run;
      if (last) state.pinned = n - 1;
      state.dest = state.pinned;
      state.layer = Math.min(state.layer, run.layers - 1);
      state.head = Math.min(state.head, run.heads - 1);
      build();
      setStatus('done', n + ' tokens, ' + run.layers + ' layers \u00d7 ' + run.heads + ' heads');
    }
    sizeSelect.addEventListener('change', function () { stepOptions(); show(); });
    stepSelect.addEventListener('change', show);
    if (runs.length === 0) {
      setStatus('done', 'nothing to show');
      return Promise.resolve();
    }
    stepOptions();
    return show();
  }
  window.pythiaAttentionViewer = pythiaAttentionViewer;
})();
`;

/** A run as the report carries it: the weights with src ≤ dest alone, in order, as integers of 1/UNITS. */
function packed(run: AttentionRun): Omit<AttentionRun, 'weights'> & { lower: number[] } {
  const { weights, ...rest } = run;
  const n = run.tokens.length;
  const lower: number[] = [];
  for (let p = 0; p < run.layers * run.heads; p++)
    for (let d = 0; d < n; d++)
      for (let s = 0; s <= d; s++) lower.push(Math.round(weights[(p * n + d) * n + s]! * UNITS));
  return { ...rest, lower };
}

/** Unpacks the report's runs (packed) into the viewer's, then draws it. */
const REPORT_BOOT = `(function () {
  var runs = JSON.parse(document.getElementById('attention-data').textContent).map(function (r) {
    var n = r.tokens.length;
    var weights = new Array(r.layers * r.heads * n * n).fill(0);
    var k = 0;
    for (var p = 0; p < r.layers * r.heads; p++)
      for (var d = 0; d < n; d++) for (var s = 0; s <= d; s++) weights[(p * n + d) * n + s] = r.lower[k++] / ${UNITS};
    r.weights = weights;
    delete r.lower;
    return r;
  });
  pythiaAttentionViewer(document.getElementById('attention-viewer'), runs);
})();`;

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The report's viewer: the attention study's rows inline as JSON, drawn by the shared browser code. */
export function attentionSection(data: ReportData): string {
  const runs = attentionRuns(
    data.studies.attentionPatterns,
    data.studies.attentionTokens,
    data.models.map((m) => m.model),
  );
  const head = `<h3>Attention patterns</h3>
<p class="how">Every head's attention on one short text (the attention study's text, at most 32 tokens), at the chosen size and step.
Each small square is one head (rows: destination token, columns: source token; darker is more weight); pick one to draw it large,
and point at a token (click to keep it) to see how much it attends to each earlier token, written under each (to three decimals).</p>`;
  if (runs.length === 0)
    return `<div class="attention-viewer" id="attention-viewer" data-state="empty">\n${head}\n<div class="empty">${escapeHtml('no data yet (run pythia eval <suite> --attention)')}</div>\n</div>`;
  const json = JSON.stringify(runs.map(packed)).replace(/</g, '\\u003c');
  return `<style>${ATTENTION_VIEWER_CSS}</style>
<div class="attention-viewer-section">
${head}
<div class="attention-viewer" id="attention-viewer" data-state="static"><p class="empty">The attention viewer needs JavaScript.</p></div>
<script type="application/json" id="attention-data">${json}</script>
<script>${ATTENTION_VIEWER_JS}</script>
<script>${REPORT_BOOT}</script>
</div>`;
}
