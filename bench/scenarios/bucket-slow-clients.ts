// 100 slow clients on a 1 GiB object in a bucket (issue 18): the memory of
// download-gate's process tree (WORKERS=2) while it proxies 100 bodies from
// s3rver at 1 MB/s each, with s3rver serving the same clients directly for
// reference.

import { MiB } from '../lib/context'
import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { type DownloadArm, measureSlowClientArms } from '../lib/measure'
import type { Scenario } from '../lib/scenario'
import { startBucketPeers } from '../targets'

const CLIENTS = 100
const WORKERS = 2

export const bucketSlowClients: Scenario = {
	id: 'bucket-slow-clients',
	needs: () => ['big'],
	async run(ctx) {
		const seconds = ctx.opts.quick ? 4 : 10
		const section = ctx.section({
			id: this.id,
			title: `${CLIENTS} slow clients on a 1 GiB object in a bucket (s3rver)`,
			metric: 'MB/s',
			cpuUnit: 'µs/req',
			refs: ['direct'],
			ratios: ['rss', 'pss', 'anon'],
			about: `${CLIENTS} concurrent \`curl --limit-rate 1M --max-time ${seconds}\` on one 1 GiB object. **download-gate**: \`S3_BUCKET\` on s3rver, \`WORKERS=${WORKERS}\` (parent + worker), proxying each body from the bucket; peak RSS, PSS and anonymous memory are each the peak of a sum over its process tree, sampled every 50 ms (s3rver not included). **s3rver direct**: the same clients on presigned URLs, s3rver’s own memory (one process), for reference. The check is the bound the disk-backed slow-clients scenario holds download-gate to.`,
		})
		const { direct, gate } = await startBucketPeers(ctx, { workers: WORKERS, files: ['big'] })
		const file = FILES.big.name
		const arms: DownloadArm[] = [
			{
				target: direct,
				variant: 'presigned GET',
				request: await direct.download('u0', file),
				ref: 'direct',
				group: '*',
			},
			{ target: gate, variant: 'unlimited token', request: await gate.download('u0', file) },
			{ target: gate, variant: 'max_uses token', request: await gate.download('u0', file, { maxUses: 1000 }) },
		]
		for (const arm of arms) await expectOk(`${arm.target.name} (${arm.variant})`, arm.request)
		const rows = await measureSlowClientArms(ctx, arms, { clients: CLIENTS, rate: '1M', seconds })
		for (const row of rows) {
			if (row.target === 'download-gate')
				row.check = { target: '≤ 100 MiB RSS, both processes together', pass: (row.peakRssBytes ?? 0) <= 100 * MiB }
			ctx.record(section, row)
		}
	},
}
