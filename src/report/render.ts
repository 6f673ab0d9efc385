/**
 * Vega-Lite to Vega, Vega to SVG (headless, in Node), SVG to PNG (resvg, no browser). The page
 * carries the compiled Vega spec and its SVG; figures carry the same chart with its title.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { VegaLiteSpec } from './charts.js';

/** Looks shared by every chart: white background, system sans-serif text. */
const CONFIG = {
  background: 'white',
  font: 'sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 15, anchor: 'start' },
};

export function toVega(spec: VegaLiteSpec, title?: string): vega.Spec {
  const full = { ...spec, ...(title ? { title } : {}), config: CONFIG } as unknown as TopLevelSpec;
  // Vega-Lite warns when a line's point overlay repeats the line's domain settings; only errors matter here.
  return compile(full, { logger: vega.logger(vega.Error) }).spec as vega.Spec;
}

export async function renderSvg(spec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG at `scale` times the SVG's size. Text needs a system font: resvg loads the machine's fonts. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** The browser build of Vega (one UMD file defining `vega`), inlined into the page with its licence. */
export function vegaRuntime(): string {
  const require = createRequire(import.meta.url);
  const build = dirname(require.resolve('vega'));
  const version = (JSON.parse(readFileSync(join(build, '../package.json'), 'utf8')) as { version: string }).version;
  const licence = readFileSync(join(build, '../LICENSE'), 'utf8').replace(/\*\//g, '* /');
  return `/*! Vega ${version} (https://vega.github.io/vega/), with the d3 modules it bundles (ISC licence, Copyright Mike Bostock).\n${licence}*/\n${readFileSync(join(build, 'vega.min.js'), 'utf8')}`;
}
