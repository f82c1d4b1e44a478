// 1 GiB from a bucket (issue 18), 4 parallel curl: download-gate with
// S3_BUCKET on s3rver against the same object fetched straight from s3rver
// with a presigned URL. Target: ≥ 0.8× the direct GET's throughput.

import { parallelDownloads } from '../lib/curl'
import { FILES } from '../lib/data'
import { expectOk } from '../lib/http'
import { type DownloadArm, measureParallelArms } from '../lib/measure'
import { cpuText, ratioText, totalCpu } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startBucketPeers } from '../targets'

const PARALLEL = 4
const TARGET = 0.8

export const bucketThroughput1g: Scenario = {
	id: 'bucket-1g',
	needs: () => ['big'],
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: `1 GiB from a bucket (s3rver) × ${PARALLEL} parallel curl, 1 process`,
			metric: 'MB/s',
			cpuUnit: 'ms/download',
			refs: ['direct'],
			about: `${PARALLEL} simultaneous \`curl -o /dev/null\` of one 1 GiB object. **s3rver direct**: presigned GETs served by s3rver itself (the limit of proxying). **download-gate**: \`S3_BUCKET\` on that s3rver, \`WORKERS=1\`, proxying the object’s GET, with an unlimited and with a budgeted token. MB/s over all downloads; CPU per 1 GiB download, s3rver’s shown apart for download-gate’s rows. Target: ≥ ${TARGET}× the direct GET’s MB/s (the \`MB/s ÷ direct\` column).`,
		})
		const { direct, gate } = await startBucketPeers(ctx, { workers: 1, files: ['big'] })
		const file = FILES.big.name
		const arms: DownloadArm[] = [
			{ target: direct, variant: 'presigned GET', request: await direct.download('u0', file), ref: 'direct' },
			{ target: gate, variant: 'unlimited token', request: await gate.download('u0', file) },
			{ target: gate, variant: 'max_uses token', request: await gate.download('u0', file, { maxUses: 1000 }) },
		]
		for (const arm of arms) await expectOk(`${arm.target.name} (${arm.variant})`, arm.request)
		// s3rver reads the object from its directory: warm the page cache with one whole download.
		await parallelDownloads(arms[0]?.request ?? { url: '' }, 1)
		const rows = await measureParallelArms(ctx, arms, PARALLEL)
		const directRow = rows.find((r) => r.ref === 'direct')
		const directRate = directRow?.value ?? Number.POSITIVE_INFINITY
		for (const row of rows) {
			if (row.target === 'download-gate') {
				row.check = { target: `≥ ${TARGET}× direct`, pass: (row.value ?? 0) >= TARGET * directRate }
				section.notes.push(
					`Through download-gate (${row.variant}), its CPU and s3rver’s together: ${cpuText(totalCpu(row), section.cpuUnit)}, ${ratioText(totalCpu(row), directRow?.cpuPerReqS)} the direct GET’s.`,
				)
			}
			ctx.record(section, row)
		}
	},
}
