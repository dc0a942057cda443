// The pooled CSPRNG source (src/clock.ts): right sizes, never the same bytes twice, buffers the
// caller owns (not views of the pool), and large draws straight from the generator.
import { describe, expect, it } from 'vitest';
import { cryptoRandom, newId } from '../../src/clock.ts';

describe('cryptoRandom.bytes', () => {
  it('returns fresh, distinct bytes of the size asked, across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const size = 1 + (i % 40);
      const bytes = cryptoRandom.bytes(size);
      expect(bytes.length).toBe(size);
      if (size >= 16) {
        const hex = bytes.toString('hex');
        expect(seen.has(hex)).toBe(false);
        seen.add(hex);
      }
    }
    expect(seen.size).toBeGreaterThan(3000);
  });

  it('hands out copies: changing one never changes the next draw', () => {
    const a = cryptoRandom.bytes(32);
    const copy = Buffer.from(a);
    a.fill(0);
    const b = cryptoRandom.bytes(32);
    expect(b.equals(Buffer.alloc(32))).toBe(false);
    expect(copy.equals(Buffer.alloc(32))).toBe(false);
  });

  it('serves large draws and makes 128-bit ids', () => {
    expect(cryptoRandom.bytes(10_000).length).toBe(10_000);
    const ids = new Set(Array.from({ length: 1000 }, () => newId(cryptoRandom)));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
