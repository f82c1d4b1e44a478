// What a client sees on a budgeted 20 MiB GET: does it carry Content-Length
// (a progress bar, a resumable download manager) or come chunked? Compared
// with an unlimited token and a budgeted Range request on the same file.

import { getWithHeaders } from '../lib/curl'
import { FILES } from '../lib/data'
import { fmt } from '../lib/report'
import type { Scenario } from '../lib/scenario'
import { startDownloadGate } from '../targets/download-gate'

export const budgeted20mHeaders: Scenario = {
	id: 'budgeted-20m-headers',
	needs: () => ['mid'],
	async run(ctx) {
		const section = ctx.section({
			id: this.id,
			title: 'Budgeted 20 MiB GET: response headers',
			metric: 'req/s',
			cpuUnit: 'µs/req',
			about:
				'One `curl -D -` GET of a 20 MiB file through download-gate (WORKERS=1), recording the framing headers as sent on the wire.',
		})
		const gate = await ctx.own(startDownloadGate(ctx, { workers: 1 }))
		const { name, bytes: size } = FILES.mid
		const cases = [
			{ variant: 'unlimited token, GET', maxUses: undefined, range: undefined, expect: size },
			{ variant: 'max_uses=1 token, GET', maxUses: 1, range: undefined, expect: size },
			{ variant: 'max_uses=1 token, Range bytes=0-1048575', maxUses: 1, range: 'bytes=0-1048575', expect: 1048576 },
		]
		for (const c of cases) {
			const req = await gate.download('u0', name, { maxUses: c.maxUses })
			const res = await getWithHeaders({
				url: req.url,
				headers: { ...req.headers, ...(c.range ? { Range: c.range } : {}) },
			})
			const length = res.headers.get('content-length')
			const chunked = res.headers.get('transfer-encoding')
			ctx.record(section, {
				target: gate.name,
				variant: c.variant,
				runtime: gate.runtime,
				processes: gate.processes,
				check: {
					target: `Content-Length: ${c.expect}`,
					pass: length === String(c.expect) && res.bytes === c.expect,
				},
				note: `${res.status}; Content-Length: ${length ?? '—'}; Transfer-Encoding: ${chunked ?? '—'}; ${fmt(res.bytes)} bytes received`,
			})
		}
	},
}
