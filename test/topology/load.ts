import { bearer, downloadPath, type TestApp } from '../support/helpers'

// Steady traffic through real service instances while a test breaks Redis,
// recording every response so the test can judge availability (when did 200s
// come back), fail-fast (how long did a 503 take) and safety (never a 500,
// never a 200 for a used-up or revoked token, nothing acknowledged then lost).

/** One request the load made. */
export interface Sample {
	readonly op: 'issue' | 'download' | 'download-again' | 'revoke' | 'download-revoked'
	readonly app: number
	readonly start: number
	readonly end: number
	readonly status: number
	readonly error?: string
}

/** An unlimited token the service issued (200) during the load, and whether its revocation was acknowledged. */
export interface IssuedToken {
	readonly token: string
	readonly jti: string
	/** When its issuance was sent, and when the 200 arrived (ms epoch). */
	readonly issued: Acknowledged
	revoked: boolean
	/** When its revocation was sent, and when the 200 arrived, once it did. */
	revocation?: Acknowledged
	/**
	 * A revocation was sent and not acknowledged (503 or no answer): Redis may still have run it (a
	 * write whose WAIT or reply failed is not undone), so the token may be live or revoked.
	 */
	revocationUnknown?: boolean
}

/** A write the service acknowledged: when the request was sent, and when its 200 arrived (ms epoch). */
export interface Acknowledged {
	readonly sentAt: number
	readonly at: number
}

/** What a load run saw. */
export interface LoadReport {
	readonly samples: readonly Sample[]
	/** Broken guarantees, each a sentence; empty when all held. */
	readonly violations: readonly string[]
	/** Unlimited tokens issued with 200, for the after-the-fact checks. */
	readonly tokens: readonly IssuedToken[]
}

/** A running load; `stop` waits for the workers to finish their current request. */
export interface Load {
	stop(): Promise<LoadReport>
}

const ALLOWED: Record<Sample['op'], readonly number[]> = {
	issue: [200, 503],
	download: [200, 503],
	// A second full GET of a one-use token is refused, or fails with the store.
	'download-again': [401, 503],
	revoke: [200, 503],
	'download-revoked': [401, 503],
}

/**
 * Starts `workersPerApp` loops per app, each repeating: issue a one-use token
 * and download it twice; every third round also issue an unlimited token,
 * revoke it, and try it once. All for `user`'s `file`, whose bytes are `body`.
 */
export function startLoad(
	apps: readonly TestApp[],
	user: string,
	file: string,
	body: Uint8Array,
	workersPerApp = 2,
): Load {
	const samples: Sample[] = []
	const violations: string[] = []
	const tokens: IssuedToken[] = []
	let running = true
	const issuePath = (query: string) =>
		`/api/get-download-token/${encodeURIComponent(user)}/${encodeURIComponent(file)}${query}`

	async function timed(
		op: Sample['op'],
		app: number,
		send: () => Promise<Response>,
	): Promise<{ status: number; res: Response | null; start: number; end: number }> {
		const start = Date.now()
		let res: Response | null = null
		let status = 0
		let error: string | undefined
		try {
			res = await send()
			status = res.status
			if (status === 200 && (op === 'download' || op === 'download-again' || op === 'download-revoked')) {
				const got = new Uint8Array(await res.arrayBuffer())
				if (got.length !== body.length) violations.push(`${op} sent ${got.length} of ${body.length} bytes`)
			}
		} catch (err) {
			error = err instanceof Error ? err.message : String(err)
		}
		const end = Date.now()
		samples.push({ op, app, start, end, status, ...(error ? { error } : {}) })
		if (!ALLOWED[op].includes(status)) {
			const detail = res && status !== 200 ? await res.text().catch(() => '') : (error ?? '')
			// The service's last log line usually says why (a 500 is logged with its cause).
			const why = status >= 500 ? ` — log: ${apps[app]?.logLines.at(-1) ?? ''}` : ''
			violations.push(`${op} on app ${app} answered ${status} ${detail}${why}`.trim())
		}
		return { status, res, start, end }
	}

	async function worker(app: TestApp, index: number) {
		for (let round = 0; running; round++) {
			const issued = await timed('issue', index, () => app.request(issuePath('?max_uses=1')))
			if (issued.status === 200 && issued.res) {
				const { token } = (await issued.res.json()) as { token: string }
				const first = await timed('download', index, () =>
					app.request(downloadPath(user, file), { headers: bearer(token) }),
				)
				// Only after a served first GET must the second be refused: a first GET that failed
				// (503) cost nothing, so the token is still whole and a 200 is right.
				const again = await timed(first.status === 200 ? 'download-again' : 'download', index, () =>
					app.request(downloadPath(user, file), { headers: bearer(token) }),
				)
				if (first.status === 200 && again.status === 200)
					violations.push('a one-use token was downloaded in full twice')
			}
			if (round % 3 === 0) {
				const unlimited = await timed('issue', index, () => app.request(issuePath('')))
				if (unlimited.status === 200 && unlimited.res) {
					const { token, jti } = (await unlimited.res.json()) as { token: string; jti: string }
					const entry: IssuedToken = {
						token,
						jti,
						issued: { sentAt: unlimited.start, at: unlimited.end },
						revoked: false,
					}
					tokens.push(entry)
					if (round % 6 === 0) {
						const revoke = await timed('revoke', index, () =>
							app.request('/api/tokens/revoke', {
								method: 'POST',
								headers: { 'content-type': 'application/json' },
								body: JSON.stringify({ token }),
							}),
						)
						if (revoke.status !== 200) entry.revocationUnknown = true
						else {
							entry.revoked = true
							entry.revocation = { sentAt: revoke.start, at: revoke.end }
							await timed('download-revoked', index, () =>
								app.request(downloadPath(user, file), { headers: bearer(token) }),
							)
						}
					}
				}
			}
			await Bun.sleep(10)
		}
	}

	const workers = apps.flatMap((app, i) => Array.from({ length: workersPerApp }, () => worker(app, i)))
	return {
		async stop() {
			running = false
			await Promise.all(workers)
			return { samples, violations, tokens }
		},
	}
}

/** What became of the load's acknowledged writes once the dust settled. */
export interface WritesAfterFault {
	/** Writes acknowledged outside the replication window and since undone, each a sentence. */
	readonly lost: string[]
	/** Writes sent before the fault and acknowledged at most `windowMs` before it (or after it) and since undone: what asynchronous replication may lose. */
	readonly unreplicated: string[]
	/** Revocations answered 503 that Redis ran all the same (allowed: not acknowledged is not undone). */
	readonly revokedUnacknowledged: number
}

/**
 * Checks every unlimited token of `report` on `app` after the dust settled:
 * the ones whose revocation was acknowledged are refused, the others still
 * download. Without `REDIS_MIN_REPLICAS_ACK`, Redis replicates after it
 * answers, so a write acknowledged in the instant before the primary stops
 * may never reach the replica that takes over (Redis' documented window; the
 * `REDIS_MIN_REPLICAS_ACK=1` tests prove it closed). Such a write, sent before
 * the fault and acknowledged no more than `windowMs` before it (or in flight
 * across it), is reported apart; any other write undone is lost: one
 * acknowledged well before the fault, or one sent after it (which only a live
 * node can have acknowledged).
 */
export async function lostWrites(
	app: TestApp,
	user: string,
	file: string,
	report: LoadReport,
	fault: { readonly at: number; readonly windowMs: number },
): Promise<WritesAfterFault> {
	const lost: string[] = []
	const unreplicated: string[] = []
	let revokedUnacknowledged = 0
	for (const t of report.tokens) {
		const res = await app.request(downloadPath(user, file), { method: 'HEAD', headers: bearer(t.token) })
		const want = t.revoked ? 401 : 200
		if (res.status === want) continue
		// A HEAD has no body: the error code is asked for with a GET (a refusal sends no file).
		const code = res.status === 401 ? await errorCodeOf(app, downloadPath(user, file), t.token) : ''
		// Only an acknowledged write must have happened: a revocation answered 503 may have, too.
		if (t.revocationUnknown && code === 'token_revoked') {
			revokedUnacknowledged++
			continue
		}
		const write = (t.revoked ? t.revocation : undefined) ?? t.issued
		const sentence = `token ${t.jti} (${t.revoked ? 'revoked' : 'live'}) now answers ${res.status} ${code}, expected ${want}; sent ${fault.at - write.sentAt} ms before the fault, acknowledged ${write.at - fault.at} ms after it`
		if (write.sentAt < fault.at && write.at > fault.at - fault.windowMs) unreplicated.push(sentence)
		else lost.push(sentence)
	}
	return { lost, unreplicated, revokedUnacknowledged }
}

/** The error code a GET of `path` with `token` is refused with, or '' when it is not refused. */
async function errorCodeOf(app: TestApp, path: string, token: string): Promise<string> {
	const res = await app.request(path, { headers: bearer(token) })
	if (res.ok) {
		await res.arrayBuffer()
		return ''
	}
	const body = (await res.json().catch(() => ({}))) as { error?: string }
	return body.error ?? ''
}

/** Timings of a fault, from the load's samples. */
export interface Recovery {
	/** First 200 of a request that started after the fault (ms epoch), or null. */
	readonly recoveredAt: number | null
	/** Slowest answer other than 200 after the fault (ms). */
	readonly slowestFailureMs: number
	/** Which request that was (its op), or '' when none failed. */
	readonly slowestFailureOp: string
	/** 503s after the fault. */
	readonly failures: number
}

/** Reads from `report` how the service went through a fault injected at `faultAt`. */
export function recovery(report: LoadReport, faultAt: number): Recovery {
	const after = report.samples.filter((s) => s.start >= faultAt)
	const ok = after.filter((s) => s.status === 200 && (s.op === 'issue' || s.op === 'download'))
	const failed = after.filter((s) => s.status === 503 || s.status === 0)
	const slowest = failed.reduce<Sample | null>(
		(worst, s) => (worst === null || s.end - s.start > worst.end - worst.start ? s : worst),
		null,
	)
	return {
		recoveredAt: ok.length > 0 ? Math.min(...ok.map((s) => s.end)) : null,
		slowestFailureMs: slowest === null ? 0 : slowest.end - slowest.start,
		slowestFailureOp: slowest?.op ?? '',
		failures: failed.length,
	}
}
