// The cost of the events stream (issue 19): download-gate with EVENTS=on
// (what `auto` means with Redis, the default) and EVENTS=off, on the 64 KiB
// download with an unlimited token (body events, batched per instance) and
// on issuance (token.issued written by the issuing script), interleaved.

import { USERS } from '../lib/context'
import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import { startRedis } from '../lib/redis'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'

const OFF = 'EVENTS=off'

export const eventsCost: Scenario = {
	id: 'events-cost',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: 'Events on vs off: 64 KiB download and issuance, c=64, 1 process',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: [OFF],
			ratios: ['value', 'cpu', 'total'],
			about: `Two download-gates (\`WORKERS=1\`) on one redis-server of their own (the stream grows to \`EVENTS_MAX_LEN\`, 10⁶ entries by default, and is dropped with it), one with \`EVENTS=on\` (what the default \`auto\` means with Redis), one with \`EVENTS=off\`, interleaved. **download**: wrk -c64 on a 64 KiB file with an unlimited token (each body adds download.started and download.completed to a batch the instance writes). **issuance**: wrk -c64 on \`GET /api/get-download-token/u<n>/small.mp4?ttl=60\`, 100 users rotating (token.issued written by the issuing script). Ratios are against \`EVENTS=off\` in the same group; \`CPU+Redis\` counts redis-server’s CPU too, where XADD is paid. \`MAX_LIVE_TOKENS_PER_USER\` is at its maximum so issuance never meets the bound.`,
		})
		const redis = await ctx.own(startRedis())
		const env = { MAX_LIVE_TOKENS_PER_USER: '1000000' }
		const off = await ctx.own(startDownloadGate(ctx, { workers: 1, redis, env: { ...env, EVENTS: 'off' } }))
		const on = await ctx.own(startDownloadGate(ctx, { workers: 1, redis, env: { ...env, EVENTS: 'on' } }))
		const file = FILES.small.name
		const gates = [
			{ gate: off, events: OFF },
			{ gate: on, events: 'EVENTS=on' },
		]
		const arms: WrkArm[] = []
		// Each group's two arms run back to back in every round.
		for (const { gate, events } of gates)
			arms.push({
				target: gate,
				variant: `download, ${events}`,
				group: 'download',
				ref: gate === off ? OFF : undefined,
				request: await gate.download('u0', file),
			})
		for (const { gate, events } of gates)
			arms.push({
				target: gate,
				variant: `issuance, ${events}`,
				group: 'issuance',
				ref: gate === off ? OFF : undefined,
				request: gate.issuance(file),
				rotateUsers: USERS,
			})
		for (const arm of arms)
			await expectOk(`download-gate, ${arm.variant}`, { ...arm.request, url: arm.request.url.replace('{user}', 'u0') })
		const rows = await measureWrkArms(ctx, arms)
		for (const row of rows) ctx.record(section, row)
	},
}
