import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { API_KEY, makeTestApp, REPO_ROOT, type TestApp } from '../../support/helpers'

// Swagger UI driven in Debian's Chromium, the way a person adopting the
// service would: authorise, issue a token, paste it, download.

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'swagger-ui')
let t: TestApp
let browser: Browser
let page: Page
const foreignRequests: string[] = []

async function shot(name: string) {
	await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false })
}

async function authorize(scheme: 'apiKey' | 'bearerAuth', value: string) {
	await page.locator('.auth-wrapper .authorize').first().click()
	const dialog = page.locator('.dialog-ux .modal-ux')
	await dialog.waitFor()
	const section = dialog.locator('.auth-container').filter({ has: page.locator(`h4 code:text-is("${scheme}")`) })
	// A scheme already authorised must be logged out before it takes a new value.
	const logout = section.locator('button', { hasText: 'Logout' })
	if (await logout.count()) await logout.click()
	await section.locator('input').fill(value)
	await section.locator('button.authorize').click()
	await logout.waitFor()
	await shot(`authorized-${scheme}`)
	await section.locator('button.btn-done').click()
}

async function tryItOut(opblockId: string, values: Record<string, string>) {
	const op = page.locator(`#${opblockId}`)
	await op.locator('.opblock-summary').first().click()
	await op.getByRole('button', { name: 'Try it out' }).click()
	for (const [name, value] of Object.entries(values)) await op.locator(`input[placeholder="${name}"]`).fill(value)
	await op.getByRole('button', { name: 'Execute' }).click()
	const status = op.locator('.live-responses-table tr.response .response-col_status').first()
	await status.waitFor({ timeout: 15_000 })
	return op
}

beforeAll(async () => {
	await mkdir(ARTIFACTS, { recursive: true })
	t = await makeTestApp({ env: { API_KEYS: API_KEY, ISSUE_AUTH: 'api-key' } })
	await t.putFile('123', 'myvideo.mp4', new Uint8Array(256 * 1024).fill(7))
	browser = await chromium.launch({
		executablePath: '/usr/bin/chromium',
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-background-networking',
			'--disable-component-update',
			'--no-first-run',
		],
	})
	page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
	page.on('request', (request) => {
		if (!request.url().startsWith(t.baseUrl)) foreignRequests.push(request.url())
	})
}, 60_000)

afterAll(async () => {
	await browser?.close()
	await t?.close()
})

test('Swagger UI: authorise with an API key, issue a token, use it as bearer, download → 200', async () => {
	await page.goto(`${t.baseUrl}/swagger`)
	await page.locator('.swagger-ui .information-container .title').waitFor({ timeout: 20_000 })
	await shot('1-loaded')

	await authorize('apiKey', API_KEY)

	const issueOp = await tryItOut('operations-tokens-getApiGet-download-tokenByUser_idByFilename', {
		user_id: '123',
		filename: 'myvideo.mp4',
	})
	await shot('2-token-issued')
	expect(
		(
			(await issueOp.locator('.live-responses-table tr.response .response-col_status').first().textContent()) ?? ''
		).trim(),
	).toBe('200')
	const body = await issueOp
		.locator('.live-responses-table tr.response .response-col_description pre')
		.first()
		.textContent()
	const { token } = JSON.parse(body ?? '{}') as { token: string }
	expect(token.split('.')).toHaveLength(3)

	await authorize('bearerAuth', token)

	const downloadOp = await tryItOut('operations-downloads-getApiDownloadByUser_idByFilename', {
		user_id: '123',
		filename: 'myvideo.mp4',
	})
	await downloadOp.scrollIntoViewIfNeeded()
	await shot('3-downloaded')
	expect(
		(
			(await downloadOp.locator('.live-responses-table tr.response .response-col_status').first().textContent()) ?? ''
		).trim(),
	).toBe('200')
	expect(await downloadOp.locator('.live-responses-table').textContent()).toContain('video/mp4')

	// Nothing was fetched from outside this service: it works on an offline network.
	expect(foreignRequests).toEqual([])
}, 90_000)
