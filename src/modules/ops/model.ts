import { t } from 'elysia'

/** Schemas of the operations routes (SPEC §3.4). */
export const opsModel = {
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
