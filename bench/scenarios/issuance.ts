// Token issuance (sign + Redis write), c=64, rotating over 100 users:
// download-gate against the Fastify fixture doing the same work.

import { USERS } from '../lib/context'
import { FILES } from '../lib/data'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'
import { startFastify } from '../targets/fastify'

export const issuance: Scenario = {
	id: 'issuance',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: 'Token issuance, c=64, 100 users',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: ['Fastify'],
			about:
				'wrk -c64 on `GET /api/get-download-token/u<n>/small.mp4?ttl=60` with an API key, users rotating. download-gate checks the key, the names, the file and the per-user rate limit, signs an HS256 JWT and writes the jti record and index in one Lua script; the Fastify fixture checks the key, names and file, signs with jose and does one `SET … EX`.',
		})
		const fastify = await ctx.own(startFastify(ctx, { processes: 1 }))
		const gate = await ctx.own(startDownloadGate(ctx, { workers: 1 }))
		const arms: WrkArm[] = [
			{ target: fastify, request: fastify.issuance(FILES.small.name), rotateUsers: USERS, ref: 'Fastify' },
			{ target: gate, request: gate.issuance(FILES.small.name), rotateUsers: USERS },
		]
		const rows = await measureWrkArms(ctx, arms)
		const fastifyRate = rows.find((r) => r.ref === 'Fastify')?.value ?? Number.POSITIVE_INFINITY
		for (const row of rows) {
			if (row.target === 'download-gate')
				row.check = { target: '≥ 2× Fastify', pass: (row.value ?? 0) >= 2 * fastifyRate }
			ctx.record(section, row)
		}
	},
}
