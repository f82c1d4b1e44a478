// Refusals at c=64: a token with a bad signature, and a revoked one, on
// download-gate and the Fastify fixture, with the baseline's 64 KiB download
// as the yardstick (a refusal should cost less than serving the file).

import { FILES } from '../lib/data'
import { send } from '../lib/http'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startBunFile } from '../targets/bun-file'
import { startDownloadGate } from '../targets/download-gate'
import { startFastify } from '../targets/fastify'

export const refusals: Scenario = {
	id: 'refusals',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: 'Refusals, c=64, 1 process',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: ['baseline'],
			about:
				'wrk -c64 with one refused token, the same one on every request. download-gate runs with `RATE_LIMIT_DENIED` out of reach, so the signature check and the store lookup are measured, not the limiter (with the default 30/min, all but the first refusals per IP would be cheap 429s). The answer each target gives is in the notes.',
		})
		const file = FILES.small.name
		const baseline = await ctx.own(startBunFile({ processes: 1 }))
		const fastify = await ctx.own(startFastify(ctx, { processes: 1 }))
		const gate = await ctx.own(startDownloadGate(ctx, { workers: 1 }))
		const arms: WrkArm[] = [
			{
				target: baseline,
				request: await baseline.download('u0', file),
				ref: 'baseline',
				group: '*',
				variant: '64 KiB download',
			},
		]
		for (const target of [fastify, gate]) {
			arms.push(
				{ target, variant: 'bad signature', request: await target.forged('u0', file), expect: 'refused' },
				{ target, variant: 'revoked jti', request: await target.revoked('u0', file), expect: 'refused' },
			)
		}
		const answers = new Map<WrkArm, string>()
		for (const arm of arms.slice(1)) {
			const res = await send(arm.request)
			const body = (await res.json().catch(() => ({}))) as { error?: string }
			answers.set(arm, `answers ${res.status} ${body.error ?? ''}`.trim())
		}
		const rows = await measureWrkArms(ctx, arms)
		rows.forEach((row, i) => {
			const arm = arms[i]
			const answer = arm ? answers.get(arm) : undefined
			if (answer) row.note = [answer, row.note].filter(Boolean).join('; ')
			if (row.target === 'download-gate' && row.value !== undefined)
				row.check = { target: '≥ 1× baseline', pass: row.value >= (rows[0]?.value ?? 0) }
			ctx.record(section, row)
		})
	},
}
