/** The dispatch-cost tables, in Markdown: for the doc and for dispatch-cost.js's own report. */
import { fmt, markdownTable } from './stats.js'
import { DISPATCH_LIMIT_RATIO, type DispatchVariantRow } from './suite-dispatch-cost.js'

/** The per-size figures, the 1,000 / 8 ratios and batch 64's commands. */
export function dispatchCostTables(variants: readonly DispatchVariantRow[]): {
  measured: string
  ratios: string
  commands: string
} {
  const measured = markdownTable(
    ['variant', 'workers', 'Redis CPU us/job', 'in script us/job', 'k jobs/s (wall)', 'affinity hits'],
    variants.flatMap((v) =>
      v.bySize.map((s) => [
        v.variant,
        String(s.size),
        fmt(s.redisCpuUsPerJob, 1),
        fmt(s.scriptUsPerJob, 1),
        fmt(s.jobsPerSecond, 1, 1 / 1_000),
        v.variant.includes('sessions') ? `${(s.affinityHitRate * 100).toFixed(0)}%` : '-',
      ]),
    ),
  )
  const ratios = markdownTable(
    ['variant', 'Redis CPU', 'in script', `within ${DISPATCH_LIMIT_RATIO}x`],
    variants.map((v) => [
      v.variant,
      `${v.redisCpuRatio.ofMedians.toFixed(2)}x (${v.redisCpuRatio.perRound.min.toFixed(2)}-${v.redisCpuRatio.perRound.max.toFixed(2)})`,
      `${v.scriptRatio.ofMedians.toFixed(2)}x (${v.scriptRatio.perRound.min.toFixed(2)}-${v.scriptRatio.perRound.max.toFixed(2)})`,
      v.isFloor
        ? '- (floor)'
        : v.redisCpuRatio.ofMedians <= DISPATCH_LIMIT_RATIO && v.scriptRatio.ofMedians <= DISPATCH_LIMIT_RATIO
          ? 'yes'
          : 'NO',
    ]),
  )
  const commands = commandTable(variants.find((v) => v.variant === 'batch 64') ?? variants[0])
  return { measured, ratios, commands }
}

/** Where one variant's script time goes: usec per job of each command (INFO commandstats), by size. */
export function commandTable(batch: DispatchVariantRow | undefined): string {
  const names = Object.keys(batch?.commandUsPerJob ?? {}).sort(
    (a, b) => (batch?.commandUsPerJob[b]?.[1000] ?? 0) - (batch?.commandUsPerJob[a]?.[1000] ?? 0),
  )
  return markdownTable(
    ['command', '8 workers', '100 workers', '1000 workers', '1000 / 8'],
    names.map((n) => {
      const c = batch?.commandUsPerJob[n] ?? {}
      const small = c[8] ?? 0
      const big = c[1000] ?? 0
      return [
        n,
        small.toFixed(2),
        (c[100] ?? 0).toFixed(2),
        big.toFixed(2),
        small > 0 ? `${(big / small).toFixed(2)}x` : '-',
      ]
    }),
  )
}
