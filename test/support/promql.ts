import { type Dict, dict, list, readYaml, str } from './parsed'

// The PromQL of the monitoring files (Prometheus alert rules, the Grafana
// dashboard) and the metric names it selects.

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'inf', 'nan'])

/**
 * The metric names a PromQL expression selects: identifiers left once strings,
 * label matchers, ranges, offsets, numbers, grouping label lists and function
 * names are taken out.
 */
export function metricNames(expr: string): string[] {
	const bare = expr
		.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
		.replace(/\{[^}]*\}/g, ' ')
		.replace(/\[[^\]]*\]/g, ' ')
		.replace(/\boffset\s+-?[0-9a-z]+/gi, ' ')
		.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
		.replace(/(?<![\w:])[0-9][0-9.]*(?:e[+-]?[0-9]+)?[a-z]*/gi, ' ')
	const names: string[] = []
	for (const m of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
		const rest = bare.slice((m.index ?? 0) + m[0].length)
		if (/^\s*\(/.test(rest) || PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue
		names.push(m[0])
	}
	return names
}

/** One alerting rule of a Prometheus rules file. */
export interface AlertRule {
	readonly alert: string
	readonly expr: string
}

/** Every alerting rule of the Prometheus rules file at `path` (relative to the repository root), in order. */
export async function alertRules(path: string): Promise<AlertRule[]> {
	const groups = list(dict(await readYaml(path), path).groups, 'groups')
	return groups.flatMap((group, g) =>
		list(dict(group, `groups[${g}]`).rules, 'rules').map((rule, r) => {
			const d = dict(rule, `groups[${g}].rules[${r}]`)
			return { alert: str(d.alert, 'alert'), expr: str(d.expr, 'expr') }
		}),
	)
}

/** One PromQL query of a Grafana dashboard, and the panel (or `$variable`) it belongs to. */
export interface DashboardQuery {
	readonly panel: string
	readonly expr: string
}

/** Every PromQL query of a Grafana dashboard: panel targets and template variable queries. */
export function dashboardQueries(board: Dict): DashboardQuery[] {
	const panels = list(board.panels, 'panels').map((p, i) => dict(p, `panels[${i}]`))
	const fromPanels = panels.flatMap((p) =>
		list(p.targets, 'targets').map((t) => ({
			panel: str(p.title, 'title'),
			expr: str(dict(t, 'target').expr, 'expr'),
		})),
	)
	const variables = list(dict(board.templating, 'templating').list, 'templating.list').map((v) => dict(v, 'variable'))
	const fromVariables = variables.map((v) => {
		const query = str(dict(v.query, 'variable query').query, 'query')
		// label_values(metric, label): the metric is the selector.
		const metric = /^label_values\(([^,]+),\s*\w+\)$/.exec(query)?.[1]
		return { panel: `$${str(v.name, 'name')}`, expr: metric ?? query }
	})
	return [...fromPanels, ...fromVariables]
}
