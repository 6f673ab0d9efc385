/**
 * Paths that run-folder files (suite.json, trainer_state.json, run.json) record. Each is written
 * relative to the folder of the file that records it, so a folder moved as a whole keeps working
 * from any directory; a path that may lead outside that folder (the training data) is also written
 * as it was, absolute, for a folder moved on its own. Read back, the relative form wins: it is
 * tried first, the absolute one only where nothing is at the relative one.
 */
import { existsSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';

/** `path` relative to `fileDir`, with `/` between parts whatever the platform. */
export function relativePath(fileDir: string, path: string): string {
  return relative(resolve(fileDir), resolve(path)).split(sep).join('/') || '.';
}

export interface LocatedPath {
  /** The first place where `exists` holds, else the place relative to the recording file. */
  path: string;
  found: boolean;
  /** Every place tried, in order. */
  tried: string[];
}

/**
 * Where a recorded path is now: `recorded` resolved against the recording file's folder, else
 * `absolute` (where it was when written) if given.
 */
export function locateRecorded(
  fileDir: string,
  recorded: string,
  absolute?: string,
  exists: (path: string) => boolean = existsSync,
): LocatedPath {
  const tried = [resolve(fileDir, recorded)];
  if (absolute !== undefined && !tried.includes(resolve(absolute))) tried.push(resolve(absolute));
  const path = tried.find((p) => exists(p));
  return { path: path ?? tried[0]!, found: path !== undefined, tried };
}
