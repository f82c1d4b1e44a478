import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppError, StoreUnavailableError } from '../../../src/errors'
import type { ConditionalRequest } from '../../../src/http/conditional'
import { createDownloadService, type DownloadService } from '../../../src/modules/downloads/service'
import { createDownloadTokenCodec } from '../../../src/modules/tokens/download-token'
import { createDiskStorage } from '../../../src/storage/disk'
import { createCancellationQueue } from '../../../src/store/cancellations'
import { createMemoryTokenStore } from '../../../src/store/memory'
import type { TokenStore } from '../../../src/store/types'
import { createIn } from '../../store/contract'
import { captureLogger, fakeClock, TEST_SECRET } from '../../support/helpers'
import { pollUntil } from '../../support/poll'

// The download service on its own, with a store that counts its round trips:
// what it may remember between requests, and what it must ask every time.

const GET: ConditionalRequest = { method: 'GET', range: null, ifRange: null, ifNoneMatch: null, ifModifiedSince: null }
const SIZE = 1000

let root: string
beforeAll(async () => {
	root = await mkdtemp(join(tmpdir(), 'dlg-service-'))
	await mkdir(join(root, 'u1'))
	await writeFile(join(root, 'u1', 'v.mp4'), new Uint8Array(SIZE))
})
afterAll(() => rm(root, { recursive: true, force: true }))

function setup(revokedCacheBytes?: number) {
	const clock = fakeClock()
	const store = createMemoryTokenStore({ clock: clock.now })
	let takes = 0
	/** Store faults a test turns on: a take that ran but whose answer was lost; cancels the store does not take. */
	const faults = { takeAnswerLost: false, cancelRefused: false }
	const counted: TokenStore = {
		...store,
		take: async (userId, jti, bytes, options) => {
			takes++
			const result = await store.take(userId, jti, bytes, options)
			if (faults.takeAnswerLost) throw new StoreUnavailableError(new Error('the answer was lost'))
			return result
		},
		cancel: async (userId, jti, reservation) => {
			if (faults.cancelRefused) throw new StoreUnavailableError(new Error('the store is away'))
			return store.cancel(userId, jti, reservation)
		},
	}
	const cancellations = createCancellationQueue(counted, captureLogger().log)
	const codec = createDownloadTokenCodec({ secret: TEST_SECRET, previousSecrets: [], clock: clock.now })
	const service: DownloadService = createDownloadService({
		codec,
		store: counted,
		storage: createDiskStorage(root),
		log: captureLogger().log,
		clock: clock.now,
		cancellations,
		...(revokedCacheBytes === undefined ? {} : { revokedCacheBytes }),
	})
	let n = 0
	async function issue(opts: { maxUses?: number; record?: boolean } = {}) {
		const jti = `jti${++n}`
		const iat = Math.floor(clock.now() / 1000)
		if (opts.record !== false)
			await createIn(store, {
				jti,
				userId: 'u1',
				filename: 'v.mp4',
				issuedAtS: iat,
				expiresAtS: iat + 600,
				maxUses: opts.maxUses ?? null,
				budgetBytes: opts.maxUses ? opts.maxUses * SIZE : null,
				allowanceBytes: 0,
				sizeBytes: SIZE,
				policy: {},
				graceS: 0,
			})
		const token = await codec.sign({ user_id: 'u1', filename: 'v.mp4', action: 'download', jti, iat, exp: iat + 600 })
		return { jti, token }
	}
	const prepare = (token: string) =>
		service.prepare({ token, userId: 'u1', filename: 'v.mp4', conditional: GET, clientAddress: () => '127.0.0.1' })
	const codeOf = (token: string) =>
		prepare(token).then(
			(plan) => {
				plan.file.close()
				return 'ok'
			},
			(err: unknown) => (err instanceof AppError ? err.code : String(err)),
		)
	return { store, service, issue, prepare, codeOf, takes: () => takes, clock, faults, cancellations }
}

describe('download service: what it remembers', () => {
	test('a jti the store reported revoked is refused again without asking the store', async () => {
		const s = setup()
		const { jti, token } = await s.issue()
		expect(await s.codeOf(token)).toBe('ok')
		await s.store.revoke('u1', jti)
		expect(await s.codeOf(token)).toBe('token_revoked')
		const asked = s.takes()
		for (let i = 0; i < 5; i++) expect(await s.codeOf(token)).toBe('token_revoked')
		expect(s.takes()).toBe(asked)
	})

	test('other tokens of the same user are still checked and served', async () => {
		const s = setup()
		const revoked = await s.issue()
		const other = await s.issue()
		await s.store.revoke('u1', revoked.jti)
		expect(await s.codeOf(revoked.token)).toBe('token_revoked')
		const asked = s.takes()
		expect(await s.codeOf(other.token)).toBe('ok')
		expect(s.takes()).toBe(asked + 1)
	})

	test('expiry still wins over a remembered revocation', async () => {
		const s = setup()
		const { jti, token } = await s.issue()
		await s.store.revoke('u1', jti)
		expect(await s.codeOf(token)).toBe('token_revoked')
		s.clock.advance(601_000)
		expect(await s.codeOf(token)).toBe('token_expired')
	})

	test('a missing record is not remembered: the store is asked every time', async () => {
		const s = setup()
		const { token } = await s.issue({ record: false })
		for (let i = 0; i < 3; i++) expect(await s.codeOf(token)).toBe('token_revoked')
		expect(s.takes()).toBe(3)
	})

	test('a used-up budget is not remembered: bytes given back make it usable again', async () => {
		const s = setup()
		const { token } = await s.issue({ maxUses: 1 })
		const plan = await s.prepare(token)
		plan.file.close()
		expect(await s.codeOf(token)).toBe('token_used_up')
		await s.service.finish(plan, { status: 200, written: 0, complete: false })
		expect(await s.codeOf(token)).toBe('ok')
	})

	test('the memory is bounded, oldest first, and 0 turns it off', async () => {
		// Room for two remembered jtis (key "u1\0jtiN": 14 bytes + 64 of overhead each).
		const small = setup(160)
		const tokens = [await small.issue(), await small.issue(), await small.issue()]
		for (const t of tokens) {
			await small.store.revoke('u1', t.jti)
			expect(await small.codeOf(t.token)).toBe('token_revoked')
		}
		const asked = small.takes()
		expect(await small.codeOf(tokens[2]?.token ?? '')).toBe('token_revoked')
		expect(small.takes()).toBe(asked)
		expect(await small.codeOf(tokens[0]?.token ?? '')).toBe('token_revoked')
		expect(small.takes()).toBe(asked + 1)

		const off = setup(0)
		const t = await off.issue()
		await off.store.revoke('u1', t.jti)
		for (let i = 0; i < 3; i++) expect(await off.codeOf(t.token)).toBe('token_revoked')
		expect(off.takes()).toBe(3)
	})
})

describe('download service: a take that ran but whose answer was lost', () => {
	test('until its cancel lands, a retry the store refuses as used up is 503 store_unavailable (try again), then the budget is back', async () => {
		const s = setup()
		const { token } = await s.issue({ maxUses: 1 })
		// The store charged the one use, the answer never came: 503, and the charge is to be cancelled.
		s.faults.takeAnswerLost = true
		s.faults.cancelRefused = true
		expect(await s.codeOf(token)).toBe('store_unavailable')
		s.faults.takeAnswerLost = false
		// The store still holds the charge and refuses the token as used up; the client is told to retry, not that it is over.
		expect(await s.codeOf(token)).toBe('store_unavailable')
		expect(s.cancellations.pending).toBe(1)
		s.faults.cancelRefused = false
		expect(
			await pollUntil(
				() => s.cancellations.pending,
				(n) => n === 0,
				3000,
			),
		).toBe(0)
		expect(await s.codeOf(token)).toBe('ok')
		// Used now for real: with nothing waiting to be given back, used up is the answer.
		expect(await s.codeOf(token)).toBe('token_used_up')
	})
})
