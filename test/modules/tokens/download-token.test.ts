import { describe, expect, test } from 'bun:test'
import { bearer, downloadPath, makeTestApp, type TestApp } from '../../support/helpers'

// Download tokens are verified with the key their `kid` names: JWT_SECRET or
// one of JWT_PREVIOUS_SECRETS, so a rotation does not cut off tokens in flight.

async function seed(t: TestApp) {
	await t.putFile('123', 'v.mp4', 'video')
}

const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error

describe('key rotation', () => {
	test('a token signed with the previous secret still downloads; an unknown key does not', async () => {
		const old = await makeTestApp({ env: { JWT_SECRET: 'o'.repeat(40) } })
		await seed(old)
		const { token } = await old.issue('123', 'v.mp4')
		const shared = { REDIS_KEY_PREFIX: old.config.redisKeyPrefix, STORAGE_DIR: old.storageDir }
		const rotated = await makeTestApp({
			env: { ...shared, JWT_SECRET: 'n'.repeat(40), JWT_PREVIOUS_SECRETS: 'o'.repeat(40) },
		})
		expect((await rotated.request(downloadPath('123', 'v.mp4'), { headers: bearer(token) })).status).toBe(200)
		// New tokens carry the new kid and verify on the rotated instance.
		const fresh = await rotated.issue('123', 'v.mp4')
		expect(fresh.token.split('.')[0]).not.toBe(token.split('.')[0])
		expect((await rotated.request(downloadPath('123', 'v.mp4'), { headers: bearer(fresh.token) })).status).toBe(200)

		const forgotten = await makeTestApp({ env: { ...shared, JWT_SECRET: 'n'.repeat(40) } })
		const res = await forgotten.request(downloadPath('123', 'v.mp4'), { headers: bearer(token) })
		expect(res.status).toBe(401)
		expect(await errorOf(res)).toBe('invalid_token')
		await Promise.all([rotated.close(), forgotten.close()])
		await old.close()
	})
})
