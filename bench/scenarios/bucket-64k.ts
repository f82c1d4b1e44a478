// 64 KiB downloads from a bucket (issue 18): download-gate with S3_BUCKET on
// s3rver, proxying each body, against the same object fetched straight from
// s3rver with a presigned URL (the limit of proxying), c=64, one process each.

import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { measureWrkArms, type WrkArm } from '../lib/measure'
import { cpuText, ratioText, totalCpu } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startBucketPeers } from '../targets'

export const bucket64k: Scenario = {
	id: 'bucket-64k',
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: '64 KiB download from a bucket (s3rver), c=64, 1 process',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			refs: ['direct'],
			about:
				'wrk -c64 on one 64 KiB object. **s3rver direct**: a plain GET of a presigned URL (a day long) from s3rver itself, no gate: the limit of proxying. **download-gate**: `S3_BUCKET` on that s3rver, `WORKERS=1`, an unlimited token; each download checks the token, asks the bucket for the object (HEAD) and proxies its GET. The CPU column is the server tree’s own (s3rver’s for the direct row); **s3rver CPU** is what s3rver spent per request served through download-gate.',
		})
		const { direct, gate } = await startBucketPeers(ctx, { workers: 1 })
		const file = FILES.small.name
		const arms: WrkArm[] = [
			{ target: direct, variant: 'presigned GET', request: await direct.download('u0', file), ref: 'direct' },
			{ target: gate, variant: 'unlimited token', request: await gate.download('u0', file) },
		]
		for (const arm of arms) await expectOk(`${arm.target.name} (${arm.variant})`, arm.request)
		const rows = await measureWrkArms(ctx, arms)
		for (const row of rows) ctx.record(section, row)
		const [ref, through] = rows
		if (ref && through)
			section.notes.push(
				`Through download-gate, its CPU and s3rver’s together: ${cpuText(totalCpu(through), section.cpuUnit)}, ${ratioText(totalCpu(through), ref.cpuPerReqS)} the direct GET’s.`,
			)
	},
}
