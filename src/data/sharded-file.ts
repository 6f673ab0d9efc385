/**
 * Positioned reads from one file, or from shards that together are one file. Pythia publishes
 * large `.bin` files cut into byte-range shards named `<base>-00000-of-00020.bin` …
 * `<base>-00020-of-00020.bin` (the number after "of" is the last shard's index); their
 * concatenation is the `.bin` (Pythia `utils/unshard_memmap.py`), so we read them as one without
 * merging.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FormatError } from '../util/errors.js';

interface Shard {
  path: string;
  fd: number;
  start: number;
  size: number;
}

export class ShardedFile {
  private constructor(
    readonly name: string,
    private readonly shards: Shard[],
    readonly size: number,
  ) {}

  /** Opens `path` itself if it exists, else the shards `<path minus .bin>-NNNNN-of-MMMMM.bin`. */
  static open(path: string): ShardedFile {
    if (existsSync(path)) return ShardedFile.fromPaths(path, [path]);
    const shardPaths = findShards(path);
    if (shardPaths.length === 0) {
      throw new FormatError(path, 'no such file, and no shards named like -00000-of-NNNNN.bin beside it');
    }
    return ShardedFile.fromPaths(path, shardPaths);
  }

  private static fromPaths(name: string, paths: string[]): ShardedFile {
    const shards: Shard[] = [];
    let start = 0;
    try {
      for (const path of paths) {
        const fd = openSync(path, 'r');
        const size = fstatSync(fd).size;
        shards.push({ path, fd, start, size });
        start += size;
      }
    } catch (e) {
      for (const s of shards) closeSync(s.fd);
      throw e;
    }
    return new ShardedFile(name, shards, start);
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** Fills `target` with the bytes at [position, position + target.length). */
  readInto(position: number, target: Uint8Array): void {
    if (position < 0 || position + target.length > this.size) {
      throw new FormatError(
        this.name,
        `read of bytes [${position}, ${position + target.length}) is past the end (${this.size} bytes)`,
      );
    }
    let done = 0;
    for (const shard of this.shards) {
      if (done === target.length) break;
      const at = position + done;
      if (at >= shard.start + shard.size) continue;
      const want = Math.min(target.length - done, shard.start + shard.size - at);
      let got = 0;
      while (got < want) {
        const n = readSync(shard.fd, target, done + got, want - got, at - shard.start + got);
        if (n === 0) throw new FormatError(shard.path, `file shrank while reading at byte ${at - shard.start + got}`);
        got += n;
      }
      done += want;
    }
  }

  close(): void {
    for (const s of this.shards) closeSync(s.fd);
    this.shards.length = 0;
  }
}

function findShards(path: string): string[] {
  const dir = dirname(path);
  const base = basename(path).replace(/\.bin$/, '');
  if (!existsSync(dir)) return [];
  const pattern = /^-(\d{5})-of-(\d{5})\.bin$/;
  const found = new Map<number, number>();
  for (const entry of readdirSync(dir)) {
    if (!entry.startsWith(base)) continue;
    const m = pattern.exec(entry.slice(base.length));
    if (m) found.set(Number(m[1]), Number(m[2]));
  }
  if (found.size === 0) return [];
  const last = found.get(0);
  if (last === undefined) throw new FormatError(path, 'shard -00000-of-NNNNN.bin is missing');
  const paths: string[] = [];
  for (let i = 0; i <= last; i++) {
    if (found.get(i) !== last) {
      throw new FormatError(path, `shard ${String(i).padStart(5, '0')} of ${String(last).padStart(5, '0')} is missing`);
    }
    paths.push(join(dir, `${base}-${String(i).padStart(5, '0')}-of-${String(last).padStart(5, '0')}.bin`));
  }
  return paths;
}
