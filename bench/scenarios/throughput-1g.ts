// 1 GiB × 4 parallel curl downloads, one process each: how close to the
// plain Bun.file server and to nginx's sendfile download-gate gets, with an
// unlimited token (zero-copy file body) and a budgeted one (counted stream).

import { parallelDownloads } from '../lib/curl'
import { FILES } from '../lib/data'
import { type DownloadArm, measureParallelArms } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startPeers } from '../targets'

const PARALLEL = 4

export const throughput1g: Scenario = {
	id: 'throughput-1g',
	needs: () => ['big'],
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: `1 GiB × ${PARALLEL} parallel curl`,
			metric: 'MB/s',
			cpuUnit: 'ms/download',
			about: `${PARALLEL} simultaneous \`curl -o /dev/null\` of one 1 GiB file (page cache warm), one process per server. MB/s over all of them; CPU per 1 GiB download.`,
		})
		const peers = await startPeers(ctx, 1)
		const file = FILES.big.name
		const arms: DownloadArm[] = [
			{ target: peers.baseline, request: await peers.baseline.download('u0', file), ref: 'baseline' },
		]
		if (peers.nginx) arms.push({ target: peers.nginx, request: await peers.nginx.download('u0', file), ref: 'nginx' })
		if (peers.fastify) arms.push({ target: peers.fastify, request: await peers.fastify.download('u0', file) })
		arms.push(
			{ target: peers.gate, variant: 'unlimited token', request: await peers.gate.download('u0', file) },
			{
				target: peers.gate,
				variant: 'max_uses token',
				request: await peers.gate.download('u0', file, { maxUses: 1000 }),
			},
		)
		await parallelDownloads(arms[0]?.request ?? { url: '' }, 1) // warm the page cache
		const rows = await measureParallelArms(ctx, arms, PARALLEL)
		const base = rows.find((r) => r.ref === 'baseline')?.value ?? 0
		for (const row of rows) {
			if (row.target === 'download-gate' && row.value !== undefined) {
				const min = row.variant === 'unlimited token' ? 0.9 : 0.5
				row.check = { target: `≥ ${min}× baseline`, pass: row.value >= min * base }
			}
			ctx.record(section, row)
		}
	},
}
