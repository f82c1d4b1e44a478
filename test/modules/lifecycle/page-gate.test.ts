import { describe, expect, test } from 'bun:test'
import { createGate } from '../../../src/modules/lifecycle/page-gate'

/** A promise and the function that settles it, for work a test finishes by hand. */
function deferred() {
	let resolve = () => {}
	let reject = (_: Error) => {}
	const promise = new Promise<void>((res, rej) => {
		resolve = res
		reject = rej
	})
	return { promise, resolve, reject }
}

describe('createGate', () => {
	test('at most `size` run at once; the others start in the order they came, as places free up', async () => {
		const gate = createGate(2)
		const started: number[] = []
		const works = Array.from({ length: 5 }, () => deferred())
		const runs = works.map((w, i) =>
			gate.run(async () => {
				started.push(i)
				await w.promise
				return i
			}),
		)
		await Bun.sleep(0)
		expect(started).toEqual([0, 1])
		works[1]?.resolve()
		await Bun.sleep(0)
		expect(started).toEqual([0, 1, 2])
		// A newcomer waits behind those already waiting.
		const late = gate.run(async () => {
			started.push(9)
			return 9
		})
		works[0]?.resolve()
		await Bun.sleep(0)
		expect(started).toEqual([0, 1, 2, 3])
		for (const w of works) w.resolve()
		expect(await Promise.all([...runs, late])).toEqual([0, 1, 2, 3, 4, 9])
		expect(started).toEqual([0, 1, 2, 3, 4, 9])
	})

	test('work that fails frees its place and the failure reaches its caller', async () => {
		const gate = createGate(1)
		const failing = gate.run(async () => {
			throw new Error('store down')
		})
		const next = gate.run(async () => 'ran')
		await expect(failing).rejects.toThrow('store down')
		expect(await next).toBe('ran')
		expect(await gate.run(async () => 'again')).toBe('again')
	})

	test.each([[0], [-1], [1.5], [Number.NaN]])('size %p → RangeError', (size) => {
		expect(() => createGate(size)).toThrow(RangeError)
	})
})
