// The "nbops" left sidebar: latest runs, one run's detail, and the model registry.
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  getRun,
  IModel,
  IModelVersion,
  IRun,
  IRunSummary,
  listModels,
  listRuns,
  metricHistory,
  NbopsApiError,
  rollback,
  transition
} from './api';

export const STAGES = ['None', 'Staging', 'Production', 'Archived'];
const RUNS_SHOWN = 25;
const POLL_MS = 15000;

type Attrs = Record<string, string | undefined>;

/** A tiny element builder: el('div', {class: 'x'}, 'text', child). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) {
      node.setAttribute(k, v);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const m = Math.floor(seconds / 60);
  if (m < 60) {
    return `${m} m ${Math.round(seconds - m * 60)} s`;
  }
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      return String(value);
    }
    return Math.abs(value) >= 1000 || Math.abs(value) < 0.001
      ? value.toPrecision(4)
      : value.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  }
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

const STATUS_ICON: Record<string, string> = {
  RUNNING: '\u25CF', // filled circle
  FINISHED: '\u2714', // check mark
  FAILED: '\u2716', // heavy x
  KILLED: '\u25A0' // square
};

export function statusIcon(status: string): HTMLSpanElement {
  return el(
    'span',
    {
      class: `nbops-status nbops-status-${status.toLowerCase()}`,
      title: status
    },
    STATUS_ICON[status] ?? '?'
  );
}

/** A small SVG line of a metric's history. */
function sparkline(values: number[], width = 160, height = 32): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('class', 'nbops-sparkline');
  const finite = values.filter(v => isFinite(v));
  if (finite.length < 2) {
    return svg;
  }
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const span = hi - lo || 1;
  const points = values
    .map((v, i) => {
      const x = (i / (values.length - 1)) * (width - 4) + 2;
      const y = height - 2 - ((v - lo) / span) * (height - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points);
  svg.appendChild(line);
  return svg;
}

function table(rows: [string, unknown][], cls: string): HTMLTableElement {
  const t = el('table', { class: `nbops-kv ${cls}` });
  for (const [k, v] of rows) {
    t.append(el('tr', {}, el('th', {}, k), el('td', {}, formatValue(v))));
  }
  return t;
}

function errorText(error: unknown): string {
  if (error instanceof NbopsApiError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

export class NbopsSidebar extends Widget {
  constructor() {
    super();
    this.id = 'nbops-sidebar';
    this.addClass('nbops-sidebar');
    this.title.caption = 'nbops: runs and models';

    const refreshButton = el(
      'button',
      { class: 'nbops-button nbops-refresh', title: 'Refresh runs and models' },
      'Refresh'
    );
    refreshButton.addEventListener('click', () => void this.refresh());
    this._error = el('div', { class: 'nbops-error', role: 'alert' });
    this._error.hidden = true;
    this._runsList = el('ul', { class: 'nbops-run-list' });
    this._runsSection = el(
      'section',
      { class: 'nbops-runs' },
      el('h3', {}, 'Latest runs'),
      this._runsList
    );
    this._detail = el('section', { class: 'nbops-run-detail' });
    this._detail.hidden = true;
    this._models = el('div', { class: 'nbops-model-list' });
    this.node.append(
      el('header', { class: 'nbops-header' }, el('h2', {}, 'nbops'), refreshButton),
      this._error,
      this._runsSection,
      this._detail,
      el('section', { class: 'nbops-models' }, el('h3', {}, 'Models'), this._models)
    );
  }

  /** Fetch runs and models again; concurrent calls share one request. */
  refresh(): Promise<void> {
    if (!this._pending) {
      this._pending = this._load().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  /** Show one run's detail (params, metrics, artifacts) in place of the run list. */
  openRun(runId: string): Promise<void> {
    return this._showRun(runId);
  }

  protected onAfterShow(): void {
    void this.refresh();
    this._timer = window.setInterval(() => {
      if (this.isVisible) {
        void this.refresh();
      }
    }, POLL_MS);
  }

  protected onBeforeHide(): void {
    window.clearInterval(this._timer);
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  private async _load(): Promise<void> {
    try {
      const [page, models] = await Promise.all([
        listRuns({ limit: RUNS_SHOWN }),
        listModels()
      ]);
      this._showError(null);
      this._renderRuns(page.runs, page.total);
      this._renderModels(models);
      if (this._openRun) {
        await this._showRun(this._openRun);
      }
    } catch (error) {
      this._showError(`Could not load nbops data: ${errorText(error)}`);
    }
  }

  private _showError(message: string | null): void {
    this._error.textContent = message ?? '';
    this._error.hidden = message === null;
  }

  private _renderRuns(runs: IRunSummary[], total: number): void {
    this._runsList.replaceChildren();
    if (runs.length === 0) {
      this._runsList.append(
        el('li', { class: 'nbops-empty' }, 'No runs yet: add %%track to a cell and run it.')
      );
      return;
    }
    for (const run of runs) {
      const metrics = Object.entries(run.metrics ?? {})
        .slice(0, 3)
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join('  ');
      const item = el(
        'li',
        {
          class: 'nbops-run',
          'data-run-id': run.run_id,
          'data-status': run.status,
          title: `run ${run.run_id}${run.experiment ? ` in ${run.experiment}` : ''}`,
          tabindex: '0'
        },
        statusIcon(run.status),
        el('span', { class: 'nbops-run-name' }, run.name || run.run_id),
        el('span', { class: 'nbops-run-duration' }, formatDuration(run.duration)),
        el('div', { class: 'nbops-run-metrics' }, metrics)
      );
      if (run.parent_id) {
        item.classList.add('nbops-run-child');
      }
      const open = () => void this._showRun(run.run_id);
      item.addEventListener('click', open);
      item.addEventListener('keydown', e => {
        if (e.key === 'Enter') {
          open();
        }
      });
      this._runsList.append(item);
    }
    if (total > runs.length) {
      this._runsList.append(
        el('li', { class: 'nbops-more' }, `${total - runs.length} older runs: nbops.runs() lists all`)
      );
    }
  }

  private async _showRun(runId: string): Promise<void> {
    let run: IRun;
    try {
      run = await getRun(runId);
    } catch (error) {
      this._showError(errorText(error));
      this._closeRun();
      return;
    }
    this._openRun = runId;
    const back = el('button', { class: 'nbops-button nbops-back' }, '\u2190 Runs');
    back.addEventListener('click', () => this._closeRun());
    const code = (run.code ?? {}) as Record<string, unknown>;
    const metricsTable = el('table', { class: 'nbops-kv nbops-detail-metrics' });
    for (const [k, v] of Object.entries(run.metrics ?? {})) {
      const cell = el('td', {}, formatValue(v));
      const row = el('tr', {}, el('th', {}, k), cell);
      if ((run.metric_keys ?? []).includes(k)) {
        const button = el('button', { class: 'nbops-link', title: 'Show history' }, '\u223F');
        button.addEventListener('click', async () => {
          button.disabled = true;
          try {
            const h = await metricHistory(run.run_id, k);
            cell.append(sparkline(h.values));
          } catch (error) {
            this._showError(errorText(error));
          }
        });
        cell.append(' ', button);
      }
      metricsTable.append(row);
    }
    this._detail.replaceChildren(
      back,
      el('h3', { class: 'nbops-run-title' }, statusIcon(run.status), ' ', run.name || run.run_id),
      table(
        [
          ['run id', run.run_id],
          ['status', run.status],
          ['experiment', run.experiment],
          ['parent', run.parent_id],
          ['started', run.start_time],
          ['duration', formatDuration(run.duration)],
          ['notebook', code.notebook],
          ['git commit', code.git_commit]
        ].filter(([, v]) => v !== null && v !== undefined && v !== '') as [string, unknown][],
        'nbops-detail-summary'
      ),
      el('h4', {}, 'Metrics'),
      metricsTable,
      el('h4', {}, 'Params'),
      table(Object.entries(run.params ?? {}), 'nbops-detail-params'),
      ...(Object.keys(run.tags ?? {}).length
        ? [el('h4', {}, 'Tags'), table(Object.entries(run.tags), 'nbops-detail-tags')]
        : []),
      ...((run.artifacts ?? []).length
        ? [
            el('h4', {}, 'Artifacts'),
            table(
              (run.artifacts ?? []).map(a => [a.name, `${a.kind}, ${a.size} bytes`]),
              'nbops-detail-artifacts'
            )
          ]
        : []),
      ...(run.error ? [el('h4', {}, 'Error'), el('pre', { class: 'nbops-run-error' }, run.error)] : [])
    );
    this._runsSection.hidden = true;
    this._detail.hidden = false;
  }

  private _closeRun(): void {
    this._openRun = null;
    this._detail.hidden = true;
    this._runsSection.hidden = false;
  }

  private _renderModels(models: IModel[]): void {
    this._models.replaceChildren();
    if (models.length === 0) {
      this._models.append(
        el('p', { class: 'nbops-empty' }, 'No registered models: nbops.registry.register(run_id, name).')
      );
      return;
    }
    for (const model of models) {
      const rollbackButton = el(
        'button',
        { class: 'nbops-button nbops-rollback', title: 'Put the previous Production version back' },
        'Roll back'
      );
      rollbackButton.addEventListener('click', () => void this._rollback(model.name));
      const versions = el('div', { class: 'nbops-versions' });
      for (const v of [...model.versions].sort((a, b) => b.version - a.version)) {
        versions.append(this._versionRow(v));
      }
      this._models.append(
        el(
          'div',
          { class: 'nbops-model', 'data-model': model.name },
          el('div', { class: 'nbops-model-header' }, el('h4', {}, model.name), rollbackButton),
          ...(model.gates && model.gates.length
            ? [el('div', { class: 'nbops-gate-rules', title: 'promotion gates: a move to Staging or Production must pass them' },
                  `gates: ${model.gates.join(' · ')}`)]
            : []),
          versions
        )
      );
    }
  }

  private _versionRow(v: IModelVersion): HTMLDivElement {
    const stage = v.stage ?? 'None';
    const select = el('select', { class: 'nbops-stage-select', 'aria-label': `stage for ${v.name} v${v.version}` });
    for (const s of STAGES) {
      const option = el('option', { value: s }, s);
      option.selected = s === stage;
      select.append(option);
    }
    const reason = el('input', {
      class: 'nbops-reason',
      type: 'text',
      placeholder: 'reason',
      'aria-label': `reason for moving ${v.name} v${v.version}`
    });
    const move = el('button', { class: 'nbops-button nbops-move', title: 'Move this version to the chosen stage' }, 'Move');
    move.addEventListener('click', async () => {
      move.disabled = true;
      try {
        await this._transition(v, select.value, reason.value);
      } finally {
        move.disabled = false;
      }
    });
    const aliases = v.aliases ?? [];
    return el(
      'div',
      {
        class: 'nbops-version',
        'data-model': v.name,
        'data-version': String(v.version),
        'data-stage': stage
      },
      el(
        'div',
        { class: 'nbops-version-head' },
        el('span', { class: 'nbops-version-number' }, `v${v.version}`),
        el('span', { class: `nbops-stage nbops-stage-${stage.toLowerCase()}` }, stage),
        ...aliases.map(a => el('span', { class: 'nbops-alias' }, `@${a}`)),
        ...(v.gates
          ? [el('span', {
              class: `nbops-gates ${v.gates.startsWith('passed') ? 'nbops-gates-passed' : 'nbops-gates-failed'}`,
              title: (v.gate_results ?? [])
                .map(r => `${r.passed ? 'PASS' : 'FAIL'} ${r.rule}: ${r.measured ?? '-'} (${r.op ?? ''} ${r.threshold ?? '-'})${r.detail ? ' ' + r.detail : ''}`)
                .join('\n')
            }, `gates ${v.gates}`)]
          : []),
        el(
          'span',
          { class: 'nbops-version-run', title: v.run_id ? `registered from run ${v.run_id}` : '' },
          v.run_name || v.run_id || ''
        )
      ),
      el('div', { class: 'nbops-move-cell' }, select, reason, move)
    );
  }

  private async _transition(v: IModelVersion, stage: string, reason: string): Promise<void> {
    try {
      const updated = await transition(v.name, v.version, stage, reason);
      Notification.success(`${v.name} v${v.version} is now ${updated.stage ?? 'None'}`, {
        autoClose: 3000
      });
      this._showError(null);
    } catch (error) {
      this._showError(`Could not move ${v.name} v${v.version}: ${errorText(error)}`);
    }
    await this.refresh();
  }

  private async _rollback(name: string): Promise<void> {
    const result = await showDialog({
      title: `Roll back ${name}?`,
      body: 'The current Production version is archived and the previous one is put back in Production.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Roll back' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      const restored = await rollback(name, 'rollback from the JupyterLab sidebar');
      Notification.success(`${name}: v${restored.version} is in Production again`, { autoClose: 3000 });
      this._showError(null);
    } catch (error) {
      this._showError(`Could not roll back ${name}: ${errorText(error)}`);
    }
    await this.refresh();
  }

  private _error: HTMLDivElement;
  private _runsSection: HTMLElement;
  private _runsList: HTMLUListElement;
  private _detail: HTMLElement;
  private _models: HTMLDivElement;
  private _openRun: string | null = null;
  private _pending: Promise<void> | null = null;
  private _timer = 0;
}
