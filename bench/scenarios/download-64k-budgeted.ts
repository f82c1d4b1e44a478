// 64 KiB downloads with a `max_uses` token (a byte budget reserved per GET),
// c=64, 1 and 2 processes, against the baseline and nginx (neither has an
// equivalent: they are the floor).

import { FILES } from '../lib/data'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'

export const download64kBudgeted: Scenario = {
	id: 'download-64k-budgeted',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: '64 KiB download, max_uses token, c=64',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			about:
				'As above, with a token of `max_uses=1000000`: every GET reserves its 64 KiB from the byte budget in Redis (one Lua script). The baseline and nginx are measured again in the same rounds.',
		})
		const arms: WrkArm[] = []
		for (const processes of [1, 2]) {
			const peers = await startPeers(ctx, processes, { fastify: false })
			const file = FILES.small.name
			arms.push({ target: peers.baseline, request: await peers.baseline.download('u0', file), ref: 'baseline' })
			if (peers.nginx) arms.push({ target: peers.nginx, request: await peers.nginx.download('u0', file), ref: 'nginx' })
			arms.push({
				target: peers.gate,
				variant: 'max_uses token',
				request: await peers.gate.download('u0', file, { maxUses: 1_000_000 }),
			})
		}
		const rows = await measureWrkArms(ctx, arms)
		const base = (p: number | undefined) => rows.find((r) => r.ref === 'baseline' && r.processes === p)?.value ?? 0
		for (const row of rows) {
			if (row.target === 'download-gate' && row.value !== undefined)
				row.check = { target: '≥ 0.7× baseline', pass: row.value >= 0.7 * base(row.processes) }
			ctx.record(section, row)
		}
	},
}
