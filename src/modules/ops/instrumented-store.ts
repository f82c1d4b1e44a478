import type { TokenStore } from '../../store/types'
import type { Metrics } from './metrics'

type StoreCommand = Exclude<keyof TokenStore, 'close' | 'peek'>
const COMMANDS: readonly StoreCommand[] = ['create', 'take', 'settle', 'cancel', 'revoke', 'revokeAll', 'list', 'ping']

/**
 * The same store, with each command's latency observed (a command answered
 * from the per-process cache included) and `store_up` set
 * from whether it answered: operators see trouble building before it becomes 503s.
 */
export function instrumentStore(store: TokenStore, metrics: Metrics): TokenStore {
	const timed = { ...store } as Record<StoreCommand, (...args: unknown[]) => Promise<unknown>>
	for (const command of COMMANDS) {
		const inner = store[command] as (...args: unknown[]) => Promise<unknown>
		timed[command] = async (...args) => {
			const started = performance.now()
			try {
				const result = await inner(...args)
				metrics.storeCommandDuration.observe({ command, outcome: 'ok' }, (performance.now() - started) / 1000)
				metrics.storeUp.set(1)
				return result
			} catch (err) {
				metrics.storeCommandDuration.observe({ command, outcome: 'error' }, (performance.now() - started) / 1000)
				metrics.storeUp.set(0)
				throw err
			}
		}
	}
	// peek asks no one, so it is neither timed nor counted.
	return { ...timed, peek: store.peek, close: () => store.close() } as TokenStore
}
