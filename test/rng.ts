/**
 * A seeded pseudo-random generator (xorshift32) for tests that must replay a
 * run from its seed: numbers in [0, 1). Seed 0 is taken as 1.
 */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}
