import { describe, expect, test } from 'bun:test'
import { downloadPath, makeTestApp, type TestApp } from '../../support/helpers'

// Where the download endpoint takes its token from: the Authorization header,
// and the `token` query parameter only when ALLOW_QUERY_TOKEN says so.

async function seed(t: TestApp) {
	await t.putFile('123', 'v.mp4', 'video')
}

const errorOf = async (res: Response) => ((await res.json()) as { error: string }).error

describe('ALLOW_QUERY_TOKEN', () => {
	test('?token= works when enabled, and the token never reaches a log line', async () => {
		const t = await makeTestApp({ env: { ALLOW_QUERY_TOKEN: 'true' } })
		await seed(t)
		const { token } = await t.issue('123', 'v.mp4')
		const res = await t.request(`${downloadPath('123', 'v.mp4')}?token=${token}`)
		expect(res.status).toBe(200)
		expect(await res.text()).toBe('video')
		await t.request(`${downloadPath('123', 'v.mp4')}?token=${token}x`)
		expect(t.logLines.length).toBeGreaterThan(0)
		const signature = token.split('.')[2] ?? ''
		expect(t.logLines.join('\n')).not.toContain(signature)
		await t.close()
	})

	test('?token= is refused when disabled, and not logged either', async () => {
		const t = await makeTestApp()
		await seed(t)
		const { token } = await t.issue('123', 'v.mp4')
		const res = await t.request(`${downloadPath('123', 'v.mp4')}?token=${token}`)
		expect(res.status).toBe(401)
		expect(await errorOf(res)).toBe('missing_token')
		expect(t.logLines.join('\n')).not.toContain(token.split('.')[2] ?? '')
		await t.close()
	})
})
