/**
 * `writeReport`: a suite's results database drawn as one self-contained HTML page
 * (`<suite>/report/index.html`), and with `figuresDir` each chart as SVG and PNG.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { ResultsStore } from '../results/store.js';
import { writeFileAtomic } from '../util/atomic.js';
import { ConfigError } from '../util/errors.js';
import { buildSections } from './charts.js';
import { loadReportData } from './data.js';
import { buildPage, type RenderedChart } from './html.js';
import { renderSvg, svgToPng, toVega, vegaRuntime } from './render.js';
import { readStageTimes, readSuiteInfo } from './suite-manifest.js';

export interface ReportOptions {
  suiteDir: string;
  /** Results database; default `<suite>/results.duckdb`. */
  db?: string;
  /** Folder of index.html; default `<suite>/report`. */
  outDir?: string;
  /** Also write every chart as `<id>.svg` and `<id>.png` here. */
  figuresDir?: string;
}

export interface ReportResult {
  html: string;
  /** Ids of the charts drawn, and of those with no data yet. */
  drawn: string[];
  empty: string[];
  figures: string[];
}

export async function writeReport(options: ReportOptions): Promise<ReportResult> {
  const suiteDir = resolve(options.suiteDir);
  if (!existsSync(suiteDir) || !statSync(suiteDir).isDirectory())
    throw new ConfigError(`${options.suiteDir}: no such suite folder`);
  const db = resolve(options.db ?? join(suiteDir, 'results.duckdb'));
  if (!existsSync(db))
    throw new ConfigError(
      `${db}: no results database; run \`pythia eval ${options.suiteDir}\` first, or name one with --db`,
    );
  const outDir = resolve(options.outDir ?? join(suiteDir, 'report'));

  const suite = readSuiteInfo(suiteDir);
  const store = await ResultsStore.open(db, { readOnly: true });
  let data: Awaited<ReturnType<typeof loadReportData>>;
  try {
    data = await loadReportData(store);
  } finally {
    store.close();
  }

  const result: ReportResult = { html: join(outDir, 'index.html'), drawn: [], empty: [], figures: [] };
  const sections = [];
  for (const section of buildSections(data)) {
    const charts: RenderedChart[] = [];
    for (const chart of section.charts) {
      if (chart.spec === null) {
        charts.push({ chart, vega: null, svg: null });
        result.empty.push(chart.id);
        continue;
      }
      const spec = toVega(chart.spec);
      charts.push({ chart, vega: spec, svg: await renderSvg(spec) });
      result.drawn.push(chart.id);
      if (options.figuresDir) {
        const svg = await renderSvg(toVega(chart.spec, chart.title));
        const base = join(resolve(options.figuresDir), chart.id);
        await writeFileAtomic(`${base}.svg`, svg);
        await writeFileAtomic(`${base}.png`, svgToPng(svg));
        result.figures.push(`${base}.svg`, `${base}.png`);
      }
    }
    sections.push({ section, charts });
  }

  const page = buildPage({
    title: `Pythia report: ${suite?.suite ?? basename(suiteDir)}`,
    database: relative(outDir, db) || basename(db),
    suite,
    stages: readStageTimes(suiteDir),
    data,
    sections,
    vegaRuntime: vegaRuntime(),
  });
  await writeFileAtomic(result.html, page);
  return result;
}
