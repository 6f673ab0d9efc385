/**
 * Opens a report page in Debian's headless Chromium (never a downloaded browser) through
 * puppeteer-core, and reports what a reader would see: each chart's state and marks, console
 * errors, every request the page made, and a screenshot.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.PYTHIA_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumMissing(): string | false {
  return existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
}

export interface ChartState {
  id: string;
  /** 'interactive' once Vega drew it in the page, 'static' for the pre-rendered SVG, 'empty' when no data. */
  rendered: string;
  /** Drawn marks (paths, lines, rects, text of mark groups) in the chart's SVG. */
  marks: number;
  selector: boolean;
  text: string;
}

export interface PageReport {
  charts: ChartState[];
  errors: string[];
  requests: string[];
}

export async function launch(): Promise<Browser> {
  const root = process.getuid?.() === 0;
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-gpu'],
  });
}

export async function chartStates(page: Page): Promise<ChartState[]> {
  return page.$$eval('figure.chart', (figures) =>
    figures.map((f) => ({
      id: f.id,
      rendered: f.getAttribute('data-rendered') ?? 'empty',
      marks: f.querySelectorAll(
        '.view svg g.role-mark > path, .view svg g.role-mark > line, .view svg g.role-mark > rect',
      ).length,
      selector: f.querySelector('select') !== null,
      text: (f.querySelector('.empty')?.textContent ?? '').trim(),
    })),
  );
}

/** Loads the page (JavaScript on or off), waits until every chart with a spec is interactive, and collects what happened. */
export async function openReport(
  browser: Browser,
  html: string,
  options: { javascript?: boolean; screenshot?: string; width?: number } = {},
): Promise<PageReport & { page: Page }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.setJavaScriptEnabled(options.javascript ?? true);
  await page.setViewport({ width: options.width ?? 1280, height: 900 });
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  if (options.javascript ?? true) {
    await page
      .waitForFunction(
        "[...document.querySelectorAll('figure[data-spec]')].every((f) => f.dataset.rendered === 'interactive')",
        { timeout: 60_000 },
      )
      .catch(() => errors.push('not every chart became interactive within 60 s'));
  }
  if (options.screenshot) await page.screenshot({ path: options.screenshot as `${string}.png`, fullPage: true });
  return { page, charts: await chartStates(page), errors, requests };
}
