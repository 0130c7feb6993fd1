// The REST client for the nbops server extension (/nbops/api/...).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IRunSummary {
  run_id: string;
  name: string | null;
  experiment: string | null;
  parent_id: string | null;
  status: string;
  start_time: string | null;
  end_time: string | null;
  duration: number | null;
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  tags: Record<string, string>;
}

export interface IRunPage {
  total: number;
  offset: number;
  limit: number;
  runs: IRunSummary[];
}

export interface IArtifact {
  name: string;
  sha256: string;
  size: number;
  kind: string;
}

export interface IRun extends IRunSummary {
  code?: Record<string, unknown>;
  env?: Record<string, unknown>;
  inputs?: string[];
  artifacts?: IArtifact[];
  error?: string | null;
  metric_keys?: string[];
}

export interface IMetricHistory {
  run_id: string;
  key: string;
  steps: number[];
  values: number[];
}

export interface IModelVersion {
  name: string;
  version: number;
  run_id: string | null;
  run_name?: string | null;
  stage: string | null;
  aliases: string[];
  created: string | null;
  description: string | null;
  /** the last promotion-gate evaluation in one line, e.g. "passed 3/3 (Production)" */
  gates?: string | null;
  gate_results?: IGateResult[] | null;
}

/** One gate rule measured on a version (nbops.evaluate_gates). */
export interface IGateResult {
  rule: string;
  measured: number | string | null;
  op: string | null;
  threshold: number | string | null;
  passed: boolean;
  detail: string | null;
}

export interface IModel {
  name: string;
  versions: IModelVersion[];
  /** the model's promotion gate rules */
  gates?: string[];
}

export interface IRunQuery {
  limit?: number;
  offset?: number;
  experiment?: string;
  status?: string;
  since?: string;
  parent?: string;
}

/** Raised for any non-2xx answer; `message` is the server's explanation. */
export class NbopsApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbops', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NbopsApiError(`nbops server unreachable: ${error}`, 0);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // keep the raw text; an HTML error page is reported as is
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data === 'object' && (data.message || data.reason)) ||
      response.statusText ||
      `HTTP ${response.status}`;
    throw new NbopsApiError(String(message), response.status);
  }
  return data as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

export function listRuns(q: IRunQuery = {}): Promise<IRunPage> {
  return requestAPI<IRunPage>(`runs${query({ ...q })}`);
}

export function getRun(runId: string): Promise<IRun> {
  return requestAPI<IRun>(`runs/${encodeURIComponent(runId)}`);
}

export function metricHistory(runId: string, key: string): Promise<IMetricHistory> {
  return requestAPI<IMetricHistory>(
    `runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}`
  );
}

export async function listModels(): Promise<IModel[]> {
  const data = await requestAPI<{ models: IModel[] }>('models');
  return data.models;
}

export function transition(
  name: string,
  version: number,
  stage: string,
  reason: string,
  force = false
): Promise<IModelVersion> {
  return requestAPI<IModelVersion>(
    `models/${encodeURIComponent(name)}/versions/${version}/transition`,
    { method: 'POST', body: JSON.stringify({ stage, reason, force }) }
  );
}

export function rollback(name: string, reason: string): Promise<IModelVersion> {
  return requestAPI<IModelVersion>(`models/${encodeURIComponent(name)}/rollback`, {
    method: 'POST',
    body: JSON.stringify({ reason })
  });
}
