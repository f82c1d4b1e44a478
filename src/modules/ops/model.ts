import { t } from 'elysia'
import { Unauthorized } from '../../http/model'

/** Schemas of the operations routes (docs/contract.md §3.4). */
export const opsModel = {
	metricsUnauthorized: Unauthorized,
	health: {
		response: { 200: t.Object({ status: t.Literal('ok') }, { examples: [{ status: 'ok' }] }) },
	},
	ready: {
		response: {
			200: t.Object({ status: t.Literal('ready') }, { examples: [{ status: 'ready' }] }),
			503: t.Object(
				{
					status: t.Literal('unavailable'),
					down: t.Array(t.UnionEnum(['store', 'storage', 'draining']), { description: 'What is not ready' }),
				},
				{ examples: [{ status: 'unavailable', down: ['store'] }] },
			),
		},
	},
}
