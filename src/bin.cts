#!/usr/bin/env node
/**
 * The `image-batch` command's entry: sizes libuv's threadpool (for `serve`, which runs the
 * service in this process), then loads the CLI.
 */
import cores from './cores.cjs';
import { sizeThreadpool } from './threadpool.cjs';

sizeThreadpool(process.env, cores.defaultConcurrency());
void import('./cli.js');
