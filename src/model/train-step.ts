/**
 * The training step graph: for a batch of samples of seq+1 tokens (GPT-NeoX's layout: inputs are
 * tokens[:-1], labels tokens[1:]), the mean next-token cross-entropy and its gradient for every
 * parameter. Parameters are graph inputs, fed zero-copy each step; only loss and gradients come back.
 * Tokens are int32 from the dataset to the graph (ONNX Gather and GatherElements take int32
 * indices), fed zero-copy too; each batch's ids are checked against the vocabulary first.
 */

import { grad } from '../graph/grad.js';
import { Graph, type Tensor } from '../graph/graph.js';
import * as op from '../graph/ops.js';
import {
  type CompiledGraph,
  compile,
  type DeviceTensor,
  type Feed,
  type HostTensor,
  type RuntimeOptions,
} from '../runtime/session.js';
import { ConfigError, DataError } from '../util/errors.js';
import { type NeoXConfig, parameterShapes } from './config.js';
import { buildGptNeoX } from './gpt-neox.js';
import { type Params, parameterFeeds, parameterInputs } from './params.js';

export interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
}

/** Parameters as WebGPU buffers, by name (a step created with `gradientsOnDevice` takes them). */
export type DeviceParams = Map<string, DeviceTensor>;

export class TrainStep {
  private constructor(
    readonly config: NeoXConfig,
    readonly batch: number,
    readonly seq: number,
    private readonly session: CompiledGraph,
    private readonly gradientsOnDevice: boolean,
  ) {}

  /**
   * Builds and compiles the step for `batch` samples of `seq` + 1 tokens; with `gradients: false`
   * only the loss (validation). With `gradientsOnDevice` (WebGPU) the gradients stay in GPU memory
   * (`runOnDevice`).
   */
  static async create(
    config: NeoXConfig,
    shape: { batch: number; seq: number; gradients?: boolean; gradientsOnDevice?: boolean },
    runtime: RuntimeOptions = {},
  ): Promise<TrainStep> {
    const { batch, seq } = shape;
    if (!(Number.isInteger(batch) && batch > 0 && Number.isInteger(seq) && seq > 0)) {
      throw new ConfigError(`training batch ${batch} × seq ${seq} must be positive integers`);
    }
    if (seq > config.maxPositions)
      throw new ConfigError(`seq-length ${seq} exceeds max_position_embeddings ${config.maxPositions}`);
    const graph = new Graph();
    const { lookup, tensors } = parameterInputs(graph, config);
    const tokens = graph.input('tokens', 'int32', [batch, seq + 1]);
    const ids = op.slice(tokens, 1, 0, seq);
    const labels = op.reshape(op.slice(tokens, 1, 1, seq + 1), [batch * seq]);
    const { final } = buildGptNeoX(config, lookup, { ids });
    const head = lookup(config.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight');
    const loss = op.meanLinearCrossEntropy(final, head, labels);
    const outputs: Record<string, Tensor> = { loss };
    if (shape.gradients ?? true) {
      const names = parameterShapes(config).map((p) => p.name);
      const grads = grad(
        loss,
        names.map((n) => tensors.get(n)!),
      );
      names.forEach((n, i) => {
        outputs[`grad.${n}`] = grads[i]!;
      });
    }
    const deviceOutputs = shape.gradientsOnDevice
      ? Object.keys(outputs).filter((n) => n.startsWith('grad.'))
      : undefined;
    return new TrainStep(
      config,
      batch,
      seq,
      await compile({ graph, outputs }, { ...runtime, deviceOutputs }),
      !!shape.gradientsOnDevice,
    );
  }

  /** Ends onnxruntime's profiling of a step compiled with `runtime.profile`, writing its JSON file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  /** The loss alone for `tokens` [batch, seq + 1]; `source` names the batch in errors. */
  async loss(params: Params | DeviceParams, tokens: Int32Array, source = 'a batch'): Promise<number> {
    return (await this.feed(params, tokens, source)).loss;
  }

  /** Loss and gradients, left on the device (a step created with `gradientsOnDevice`); free them with `dispose()`. */
  async runOnDevice(
    params: Params | DeviceParams,
    tokens: Int32Array,
    source = 'a batch',
  ): Promise<{ loss: number; grads: Map<string, DeviceTensor> }> {
    const { loss, device } = await this.feed(params, tokens, source);
    const grads = new Map<string, DeviceTensor>();
    for (const { name } of parameterShapes(this.config)) {
      const g = device[`grad.${name}`];
      if (!g) throw new ConfigError('this step was compiled without gradients on the device');
      grads.set(name, g);
    }
    return { loss, grads };
  }

  /** Loss and gradients for `tokens` [batch, seq + 1]; `source` names the batch in errors. */
  async run(params: Params, tokens: Int32Array, source = 'a batch'): Promise<StepResult> {
    if (this.gradientsOnDevice) throw new ConfigError('this step keeps its gradients on the device: use runOnDevice');
    const { loss, outputs } = await this.feed(params, tokens, source);
    const grads = new Map<string, Float32Array>();
    for (const { name } of parameterShapes(this.config)) {
      const g = outputs[`grad.${name}`];
      if (!g) throw new ConfigError('this step was compiled without gradients');
      grads.set(name, g.data as Float32Array);
    }
    return { loss, grads };
  }

  private async feed(
    params: Params | DeviceParams,
    tokens: Int32Array,
    source: string,
  ): Promise<{ loss: number; outputs: Record<string, HostTensor>; device: Record<string, DeviceTensor> }> {
    if (!(tokens instanceof Int32Array)) {
      throw new ConfigError(
        `a training batch is an Int32Array of token ids, got ${(tokens as object)?.constructor?.name ?? typeof tokens}`,
      );
    }
    if (tokens.length !== this.batch * (this.seq + 1)) {
      throw new ConfigError(`a training batch needs ${this.batch} × ${this.seq + 1} tokens, got ${tokens.length}`);
    }
    const vocabSize = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      if (id < 0 || id >= vocabSize) {
        throw new DataError(
          `${source} holds token id ${id}, outside the model's vocabulary [0, ${vocabSize}): the data was tokenized with a larger vocabulary`,
        );
      }
    }
    const weights: Record<string, Feed> = isDeviceParams(params)
      ? Object.fromEntries(params)
      : parameterFeeds(this.config, params);
    const { host, device } = await this.session.runOnDevice({
      ...weights,
      tokens: { data: tokens, dims: [this.batch, this.seq + 1] },
    });
    return { loss: (host.loss!.data as Float32Array)[0]!, outputs: host, device };
  }
}

function isDeviceParams(params: Params | DeviceParams): params is DeviceParams {
  return !(params.values().next().value instanceof Float32Array);
}
