// The tab's two kinds of cache. Promises by key, bounded: answers and images over the steps of
// a long run would otherwise pile up without end. Values derived from an object, kept as long
// as that object is: what a view computes once from an answer or a colour table.

// Promises by key, at most `max`, the least recently used dropped first; one that fails is
// dropped at once, so that the next use asks again.
export class Recent {
  constructor(max) {
    this.max = max;
    this.entries = new Map();
  }

  get(key, make) {
    if (this.entries.has(key)) {
      const value = this.entries.get(key);
      this.entries.delete(key);
      this.entries.set(key, value);
      return value;
    }
    const value = make();
    value.catch(() => {
      if (this.entries.get(key) === value) this.entries.delete(key);
    });
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value);
    return value;
  }
}

// make(key), computed once per key object of the WeakMap `cache`.
export function once(cache, key, make) {
  if (!cache.has(key)) cache.set(key, make(key));
  return cache.get(key);
}
