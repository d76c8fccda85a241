#!/bin/bash
# Item 3 of issue #15: the generator variants at one fixed CPU budget on faces 64×64 (same steps, same seed).
set -e
B=${LATENTEDIT:-./latentedit}
STEPS=${STEPS:-600}
common="--data faces --size 64 --data-n 10000 --base 32 --batch 32 --steps $STEPS --sample-every 200 --checkpoint-every 100 --seed 1 --json"
run() { name=$1; shift; s=$(date +%s); if [ -f ${OUT:-runs}/cmp-$name/generator/train.ckpt ]; then r=--resume; else r=; fi; nice -n 5 $B train $common --out ${OUT:-runs}/cmp-$name $r "$@" > ${OUT:-runs}/cmp-$name.log 2>&1; echo "$name $(( $(date +%s) - s )) s" >> ${OUT:-runs}/compare.times; }
run dcgan --arch dcgan
run dcgan-mbstd --arch dcgan --mbstd
run style --arch style
run style-lr1e-3 --arch style --lr 1e-3
echo done >> ${OUT:-runs}/compare.times
# One judge for all: a faces oracle at 64×64 trained on rendered data only, then the quality of each variant.
$B oracle --model ${OUT:-runs}/cmp-dcgan --steps 3000 --json > ${OUT:-runs}/oracle64.log 2>&1
for m in dcgan dcgan-mbstd style style-lr1e-3; do
	$B evaluate --model ${OUT:-runs}/cmp-$m --quality --quality-n 1000 --oracle ${OUT:-runs}/cmp-dcgan --out ${OUT:-runs}/q-$m --json > ${OUT:-runs}/q-$m.json
done
