/**
 * A Zstandard frame of raw (stored) blocks, written from RFC 8878 (section 3.1): no content size,
 * a 128 KiB window. Lets tests make `.zst` files of any size without a compressor.
 */
export function rawZstdFrame(data: Uint8Array): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3])];
  for (let at = 0; at < data.length || at === 0; at += 1 << 17) {
    const block = data.subarray(at, at + (1 << 17));
    const last = at + (1 << 17) >= data.length ? 1 : 0;
    const header = Buffer.alloc(3);
    header.writeUIntLE((block.length << 3) | last, 0, 3); // block type 0: raw
    parts.push(header, Buffer.from(block));
  }
  return Buffer.concat(parts);
}
