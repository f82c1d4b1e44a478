import type { Config } from '../config'
import { redactedConfig } from '../config'
import { createLogger, type Logger, terminalWriter } from '../log'

/**
 * The process's logger: JSON lines, or at a terminal (and not in production)
 * lines formatted for people, the way the pino ecosystem prints them.
 */
export async function processLogger(config: Config): Promise<Logger> {
	const terminal = process.stdout.isTTY === true && !config.production
	return createLogger(config.logLevel, terminal ? await terminalWriter() : undefined)
}

/** The start-up line (configuration, every secret masked) and the warnings a development setup deserves. */
export function announceStart(config: Config, log: Logger): void {
	log.info('starting', { config: redactedConfig(config) })
	if (config.jwtSecretGenerated)
		log.warn('JWT_SECRET not set: using a random secret, so tokens die with this process (development only)')
	if (config.store.kind === 'memory') log.warn('REDIS_URL not set: using the in-memory token store (development only)')
	if (config.issueAuth === 'none')
		log.warn(
			config.issueAuthExplicit
				? 'ISSUE_AUTH=none: anyone may ask for a token for any user and file'
				: 'no API_KEYS or user-token verifier configured: anyone may ask for a token (development default)',
		)
}
