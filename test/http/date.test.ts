import { describe, expect, test } from 'bun:test'
import { httpDateNow } from '../../src/http/date'

describe('httpDateNow', () => {
	test('is the IMF-fixdate of the current second, formatted once per second', () => {
		const t = Date.UTC(2026, 10, 24, 4, 42, 39, 10)
		expect(httpDateNow(t)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
		expect(httpDateNow(t + 980)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
		expect(httpDateNow(t + 990)).toBe('Tue, 24 Nov 2026 04:42:40 GMT')
		expect(httpDateNow(t)).toBe('Tue, 24 Nov 2026 04:42:39 GMT')
	})

	test('defaults to the wall clock', () => {
		expect(Math.abs(Date.parse(httpDateNow()) - Date.now())).toBeLessThan(2000)
	})
})
