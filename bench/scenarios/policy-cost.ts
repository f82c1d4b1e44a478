// The cost of a token policy (issue 20): the 64 KiB download and issuance
// with tokens that carry no policy and with `ip=127.0.0.0/8` (the bench's
// own address, so every download passes the CIDR check), on one
// download-gate, interleaved. Comparing "no policy" with the commit before
// policies existed is a run of download-64k and issuance with --service=DIR.

import { USERS } from '../lib/context'
import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'

const NONE = 'no policy'
// wrk connects from 127.0.0.1.
const IP = '&ip=127.0.0.0/8'

export const policyCost: Scenario = {
	id: 'policy-cost',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: 'Token policy: none vs ip=127.0.0.0/8, 64 KiB download and issuance, c=64, 1 process',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: [NONE],
			about:
				'One download-gate (`WORKERS=1`). **download**: wrk -c64 on a 64 KiB file with an unlimited token without any policy, and with one issued with `ip=127.0.0.0/8`, which holds the bench’s client address: every request passes the CIDR check, so its cost is what differs. **issuance**: wrk -c64 on `GET /api/get-download-token/u<n>/small.mp4?ttl=60`, 100 users rotating, without and with `&ip=127.0.0.0/8` (parsed, checked and signed as a claim). Interleaved; ratios against no policy in the same group. `MAX_LIVE_TOKENS_PER_USER` is at its maximum so issuance never meets the bound.',
		})
		const gate = await ctx.own(startDownloadGate(ctx, { workers: 1, env: { MAX_LIVE_TOKENS_PER_USER: '1000000' } }))
		const file = FILES.small.name
		const arms: WrkArm[] = [
			{
				target: gate,
				variant: `download, ${NONE}`,
				group: 'download',
				ref: NONE,
				request: await gate.download('u0', file),
			},
		]
		// A checkout from before policies (--service=DIR) refuses the parameter: measure what it has.
		const withIp = await gate
			.download('u0', file, { query: IP })
			.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
		if (withIp instanceof Error)
			section.notes.push(`Tokens with \`ip\` could not be issued, so only rows without a policy: ${withIp.message}.`)
		else arms.push({ target: gate, variant: 'download, ip=127.0.0.0/8', group: 'download', request: withIp })
		arms.push({
			target: gate,
			variant: `issuance, ${NONE}`,
			group: 'issuance',
			ref: NONE,
			request: gate.issuance(file),
			rotateUsers: USERS,
		})
		if (!(withIp instanceof Error))
			arms.push({
				target: gate,
				variant: 'issuance, ip=127.0.0.0/8',
				group: 'issuance',
				request: gate.issuance(file, IP),
				rotateUsers: USERS,
			})
		for (const arm of arms)
			await expectOk(`download-gate, ${arm.variant}`, { ...arm.request, url: arm.request.url.replace('{user}', 'u0') })
		const rows = await measureWrkArms(ctx, arms)
		for (const row of rows) ctx.record(section, row)
	},
}
