;; The optimizer's elementwise loops in 128-bit SIMD over float32 arrays in this module's memory.
;; Each `...At` function takes the byte offsets of its arrays (multiples of 16) and a count of floats
;; rounded up to a multiple of 4; the lanes past an array's end are computed too and must be
;; padding. Every operation is an IEEE float32 operation in the order of src/train/adamw.ts's apex
;; update, so the results are bit for bit those of the scalar loop.
;;
;; Two ways to use it (src/train/kernels.ts): blocks copied in and out of the first 256 KiB (four
;; arrays of BLOCK = 16384 floats, p at 0, g at BLOCK·4, m at 2·BLOCK·4, v at 3·BLOCK·4, small
;; enough to stay in cache between copying in and out), through the functions without `At`; or
;; arrays that live in the memory of an instance of their own, grown once to hold them.
(module
  (memory (export "memory") 4)

  ;; apex AdamW: m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g·g;
  ;; p = p − lr·((m/bc1) / (sqrt(v/bc2) + eps) + wd·p)
  (func $adamApexAt (export "adamApexAt")
    (param $pp i32) (param $gp i32) (param $mp i32) (param $vp i32)
    (param $n i32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $bc1 f32) (param $bc2 f32) (param $eps f32) (param $wd f32) (param $lr f32)
    (local $i i32) (local $end i32)
    (local $g v128) (local $m v128) (local $v v128) (local $p v128) (local $denom v128)
    (local.set $end (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $p (v128.load (i32.add (local.get $pp) (local.get $i))))
        (local.set $g (v128.load (i32.add (local.get $gp) (local.get $i))))
        (local.set $m
          (f32x4.add
            (f32x4.mul (f32x4.splat (local.get $b1)) (v128.load (i32.add (local.get $mp) (local.get $i))))
            (f32x4.mul (f32x4.splat (local.get $c1)) (local.get $g))))
        (local.set $v
          (f32x4.add
            (f32x4.mul (f32x4.splat (local.get $b2)) (v128.load (i32.add (local.get $vp) (local.get $i))))
            (f32x4.mul (f32x4.mul (f32x4.splat (local.get $c2)) (local.get $g)) (local.get $g))))
        (v128.store (i32.add (local.get $mp) (local.get $i)) (local.get $m))
        (v128.store (i32.add (local.get $vp) (local.get $i)) (local.get $v))
        (local.set $denom
          (f32x4.add
            (f32x4.sqrt (f32x4.div (local.get $v) (f32x4.splat (local.get $bc2))))
            (f32x4.splat (local.get $eps))))
        (v128.store (i32.add (local.get $pp) (local.get $i))
          (f32x4.sub (local.get $p)
            (f32x4.mul (f32x4.splat (local.get $lr))
              (f32x4.add
                (f32x4.div (f32x4.div (local.get $m) (f32x4.splat (local.get $bc1))) (local.get $denom))
                (f32x4.mul (f32x4.splat (local.get $wd)) (local.get $p))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  (func (export "adamApex")
    (param $n i32) (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $bc1 f32) (param $bc2 f32) (param $eps f32) (param $wd f32) (param $lr f32)
    (call $adamApexAt (i32.const 0) (i32.const 65536) (i32.const 131072) (i32.const 196608)
      (local.get $n) (local.get $b1) (local.get $c1) (local.get $b2) (local.get $c2)
      (local.get $bc1) (local.get $bc2) (local.get $eps) (local.get $wd) (local.get $lr)))

  ;; Σ g·g over n floats at $gp in float64, four running sums (lanes 0–3 of each group of four).
  (func $sumSquaresAt (export "sumSquaresAt") (param $gp i32) (param $n i32) (result f64)
    (local $i i32) (local $end i32) (local $g v128) (local $lo v128) (local $hi v128) (local $sq v128)
    (local.set $end (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $g (v128.load (i32.add (local.get $gp) (local.get $i))))
        (local.set $sq (f64x2.promote_low_f32x4 (local.get $g)))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $sq) (local.get $sq))))
        (local.set $sq (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $sq) (local.get $sq))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (f64.add
      (f64.add (f64x2.extract_lane 0 (local.get $lo)) (f64x2.extract_lane 1 (local.get $lo)))
      (f64.add (f64x2.extract_lane 0 (local.get $hi)) (f64x2.extract_lane 1 (local.get $hi)))))

  (func (export "sumSquares") (param $n i32) (result f64)
    (call $sumSquaresAt (i32.const 65536) (local.get $n)))

  ;; g = g·coef over n floats at $gp.
  (func $scaleAt (export "scaleAt") (param $gp i32) (param $n i32) (param $coef f32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.mul (local.get $n) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $gp) (local.get $i))
          (f32x4.mul (v128.load (i32.add (local.get $gp) (local.get $i))) (f32x4.splat (local.get $coef))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  (func (export "scale") (param $n i32) (param $coef f32)
    (call $scaleAt (i32.const 65536) (local.get $n) (local.get $coef))))
