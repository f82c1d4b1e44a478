import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { BoundedCache, ENTRY_OVERHEAD_BYTES } from '../src/bounded-cache'

// The one cache every per-process memory of the service uses: whatever goes
// in, it never holds more bytes than its budget.

const sized = (maxBytes: number) => new BoundedCache<string>(maxBytes, (k, v) => k.length + v.length)

describe('BoundedCache', () => {
	test('holds what fits, evicts the oldest unused first, never keeps an entry larger than the budget', () => {
		const cache = sized(3 * (ENTRY_OVERHEAD_BYTES + 2))
		cache.set('a', '1')
		cache.set('b', '2')
		cache.set('c', '3')
		expect(cache.size).toBe(3)
		// a was read: it goes round once more, and b, the oldest unread, goes.
		cache.get('a')
		cache.set('d', '4')
		expect(['a', 'b', 'c', 'd'].map((k) => cache.has(k))).toEqual([true, false, true, true])
		expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes)
		cache.set('huge', 'x'.repeat(1000))
		expect(cache.has('huge')).toBe(false)
		expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes)
	})

	test('delete and clear keep the byte count exact', () => {
		const cache = sized(10_000)
		cache.set('k', 'value')
		cache.set('k', 'other') // replacing counts once
		expect(cache.bytes).toBe(ENTRY_OVERHEAD_BYTES + 6)
		expect(cache.delete('k')).toBe(true)
		expect(cache.delete('k')).toBe(false)
		expect(cache.bytes).toBe(0)
		cache.set('x', 'y')
		cache.clear()
		expect({ size: cache.size, bytes: cache.bytes }).toEqual({ size: 0, bytes: 0 })
	})

	test('under any sequence of operations the bytes held never exceed the budget and match the entries', () => {
		const op = fc.oneof(
			fc.record({
				kind: fc.constant('set' as const),
				key: fc.string({ maxLength: 8 }),
				value: fc.string({ maxLength: 300 }),
			}),
			fc.record({ kind: fc.constant('get' as const), key: fc.string({ maxLength: 8 }) }),
			fc.record({ kind: fc.constant('delete' as const), key: fc.string({ maxLength: 8 }) }),
		)
		fc.assert(
			fc.property(fc.integer({ min: 0, max: 2000 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
				const cache = sized(max)
				const model = new Map<string, string>()
				for (const o of ops) {
					if (o.kind === 'set') {
						cache.set(o.key, o.value)
						model.set(o.key, o.value)
					} else if (o.kind === 'get') {
						const got = cache.get(o.key)
						// Whatever it returns is what was last stored under that key.
						expect(got === undefined || got === model.get(o.key)).toBe(true)
					} else {
						cache.delete(o.key)
						model.delete(o.key)
					}
					expect(cache.bytes).toBeLessThanOrEqual(max)
				}
				let counted = 0
				for (const [k, v] of model) if (cache.has(k)) counted += k.length + v.length + ENTRY_OVERHEAD_BYTES
				expect(cache.bytes).toBe(counted)
			}),
		)
	})
})
