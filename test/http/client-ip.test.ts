import { describe, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../support/helpers'

// The client IP that refusals are counted against (RATE_LIMIT_DENIED):
// X-Forwarded-For only behind a trusted proxy.

async function seed(t: TestApp) {
	await t.putFile('123', 'v.mp4', 'video')
}

describe('client IP for RATE_LIMIT_DENIED', () => {
	const attempts = async (t: TestApp) => {
		const statuses: number[] = []
		for (let i = 0; i < 4; i++) {
			const res = await t.request(downloadPath('123', 'v.mp4'), {
				headers: { ...bearer('forged'), 'X-Forwarded-For': `203.0.113.${i}` },
			})
			statuses.push(res.status)
		}
		return statuses
	}

	test('X-Forwarded-For is ignored without TRUST_PROXY: rotating it does not escape the limit', async () => {
		const t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '2/min' } })
		await seed(t)
		expect(await attempts(t)).toEqual([401, 401, 429, 429])
		await t.close()
	})

	test('with TRUST_PROXY the first X-Forwarded-For hop is the client', async () => {
		const t = await makeTestApp({ env: { RATE_LIMIT_DENIED: '2/min', TRUST_PROXY: 'true' } })
		await seed(t)
		expect(await attempts(t)).toEqual([401, 401, 401, 401])
		await t.close()
	})
})
