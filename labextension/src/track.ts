// %%track on notebook cells: the toggle, and the badge with the last run of a tracked cell.
import { Cell, ICellModel } from '@jupyterlab/cells';
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { IRunSummary, listRuns } from './api';
import { formatDuration, statusIcon } from './sidebar';

export const TRACK_MAGIC = '%%track';
export const METADATA_KEY = 'nbops';

/** What the badge shows, stored in the cell's metadata so it survives a reload. */
export interface ITrackedCellMetadata {
  run_id: string;
  status: string;
  name?: string | null;
  duration?: number | null;
}

export function isTracked(source: string): boolean {
  const first = source.split('\n', 1)[0].trim();
  return first === TRACK_MAGIC || first.startsWith(`${TRACK_MAGIC} `);
}

/** The source with `%%track` added as the first line, or removed if it was there. */
export function toggledSource(source: string): string {
  if (isTracked(source)) {
    const newline = source.indexOf('\n');
    return newline === -1 ? '' : source.slice(newline + 1);
  }
  return `${TRACK_MAGIC}\n${source}`;
}

/** Add or remove `%%track` on a code cell; returns whether it is tracked afterwards. */
export function toggleTrack(model: ICellModel): boolean {
  const source = model.sharedModel.getSource();
  const next = toggledSource(source);
  model.sharedModel.setSource(next);
  if (!isTracked(next)) {
    model.deleteMetadata(METADATA_KEY);
  }
  return isTracked(next);
}

/** Keeps a badge on every tracked code cell of one notebook. */
export class BadgeManager {
  constructor(
    readonly panel: NotebookPanel,
    private readonly onOpenRun: (runId: string) => void
  ) {
    const notebook = panel.content;
    notebook.modelContentChanged.connect(this._schedule, this);
    notebook.cellInViewportChanged.connect(this._schedule, this);
    panel.context.ready.then(() => this._schedule());
  }

  dispose(): void {
    window.clearTimeout(this._timer);
  }

  /** Redraw every badge (cheap: a few DOM reads per cell). */
  update(): void {
    const notebook: Notebook = this.panel.content;
    for (const cell of notebook.widgets) {
      this._updateCell(cell);
    }
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => this.update(), 150);
  }

  private _updateCell(cell: Cell): void {
    const wrapper = cell.node.querySelector<HTMLElement>('.jp-Cell-inputWrapper');
    let badge = cell.node.querySelector<HTMLElement>(':scope .nbops-badge');
    const tracked = cell.model.type === 'code' && isTracked(cell.model.sharedModel.getSource());
    cell.toggleClass('nbops-tracked-cell', tracked);
    if (!tracked || !wrapper) {
      badge?.remove();
      return;
    }
    const meta = cell.model.getMetadata(METADATA_KEY) as ITrackedCellMetadata | undefined;
    if (!badge) {
      badge = document.createElement('div');
      badge.className = 'nbops-badge';
      badge.addEventListener('click', () => {
        const runId = badge?.dataset.runId;
        if (runId) {
          this.onOpenRun(runId);
        }
      });
      wrapper.append(badge);
    }
    const key = meta ? `${meta.run_id}:${meta.status}` : 'none';
    if (badge.dataset.key === key) {
      return;
    }
    badge.dataset.key = key;
    badge.replaceChildren();
    if (meta) {
      badge.dataset.runId = meta.run_id;
      badge.dataset.status = meta.status;
      badge.title = `last run ${meta.run_id} (${meta.status}${
        meta.duration ? `, ${formatDuration(meta.duration)}` : ''
      }): click to open it in the nbops sidebar`;
      badge.append(statusIcon(meta.status), ` ${meta.run_id.slice(0, 8)}`);
    } else {
      delete badge.dataset.runId;
      delete badge.dataset.status;
      badge.title = 'tracked by nbops: run the cell to record a run';
      badge.append('tracked');
    }
  }

  private _timer = 0;
}

/**
 * Finds the run a tracked cell made. When the cell is scheduled we note the newest
 * top-level run's start time (server clock, so client clock skew does not matter);
 * when it finishes, the newest top-level run started after that is the cell's run.
 */
export class RunMatcher {
  constructor(private readonly onRunRecorded: (cell: Cell, run: IRunSummary | null) => void) {
    NotebookActions.executionScheduled.connect(this._scheduled, this);
    NotebookActions.executed.connect(this._executed, this);
  }

  private _scheduled(_: unknown, args: { notebook: Notebook; cell: Cell }): void {
    const { cell } = args;
    if (cell.model.type !== 'code' || !isTracked(cell.model.sharedModel.getSource())) {
      return;
    }
    this._baseline.set(
      cell.model.id,
      listRuns({ limit: 1, parent: 'none' })
        .then(page => page.runs[0]?.start_time ?? null)
        .catch(() => null)
    );
  }

  private async _executed(
    _: unknown,
    args: { notebook: Notebook; cell: Cell; success: boolean }
  ): Promise<void> {
    const { cell } = args;
    const baseline = this._baseline.get(cell.model.id);
    if (baseline === undefined) {
      return;
    }
    this._baseline.delete(cell.model.id);
    const since = await baseline;
    let run: IRunSummary | null = null;
    try {
      const page = await listRuns({ limit: 5, parent: 'none', since: since ?? undefined });
      run = page.runs.find(r => since === null || (r.start_time ?? '') > since) ?? null;
    } catch {
      run = null;
    }
    if (run && !cell.isDisposed) {
      const meta: ITrackedCellMetadata = {
        run_id: run.run_id,
        status: run.status,
        name: run.name,
        duration: run.duration
      };
      cell.model.setMetadata(METADATA_KEY, meta);
    }
    this.onRunRecorded(cell, run);
  }

  private _baseline = new Map<string, Promise<string | null>>();
}
