"""`make bench`: what Cutout adds to Magic Hour's latency and to the minimum AWS work an image needs.

Every figure is a median with its spread, and every comparison is a ratio against a baseline measured in the same
run (the machine is noisy; absolute numbers from another run mean little). Parts:

1. cold start — each handler module in a fresh process vs. a floor process (boto3 + requests + the same clients);
2. per-record cost — the submit handler vs. a floor script making only the minimal wire calls, with call counts;
3. end to end — uploads through the local stack, latency added by Cutout over the render time, throughput vs. bound;
4. footprint — peak RSS per handler, layer and function sizes;
5. cost model per 1,000 images next to Magic Hour's credits;
6. waiting for a slot — the AWS calls an upload that waits adds;
7. renditions — render every preset of a 12-megapixel cutout vs. decode + encode, peak memory, cold start.

Run ``python -m cutout_dev.bench [--smoke] [--parts 1,2,4]``; results go to ``bench/results.json``.
"""
