func.func @main(%x: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %w = arith.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8>
  %ws = quant.scast %w : tensor<2x3xi8> to tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {1.0e-2,2.0e-2}>>
  %wd = quant.dcast %ws : tensor<2x3x!quant.uniform<i8<-127:127>:f32:0, {1.0e-2,2.0e-2}>> to tensor<2x3xf32>
  %e = tensor.empty() : tensor<3x2xf32>
  %wt = linalg.transpose ins(%wd : tensor<2x3xf32>) outs(%e : tensor<3x2xf32>) permutation = [1, 0]
  %xq = quant.qcast %x {quantune.point = "fc.input"} : tensor<1x3xf32> to tensor<1x3x!quant.uniform<u8:f32, 1.0e-1:128>>
  %xd = quant.dcast %xq : tensor<1x3x!quant.uniform<u8:f32, 1.0e-1:128>> to tensor<1x3xf32>
  %zero = arith.constant 0.0 : f32
  %o = tensor.empty() : tensor<1x2xf32>
  %f = linalg.fill ins(%zero : f32) outs(%o : tensor<1x2xf32>) -> tensor<1x2xf32>
  %m = linalg.matmul {quantune.layer = "fc"} ins(%xd, %wt : tensor<1x3xf32>, tensor<3x2xf32>) outs(%f : tensor<1x2xf32>) -> tensor<1x2xf32>
  %b = arith.constant dense<[1.0, 0.0]> : tensor<2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%m, %b : tensor<1x2xf32>, tensor<2xf32>) outs(%o : tensor<1x2xf32>) {
  ^bb0(%a: f32, %c: f32, %out: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<1x2xf32>
  return %r : tensor<1x2xf32>
}
