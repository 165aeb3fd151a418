// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/pool_net_plan.json %s | FileCheck %s --check-prefix=PLAN
// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/pool_net_plan.json %s | quantune-opt --quantune-lower-quant | FileCheck %s --check-prefix=LOWER

// A max pool between two int8 layers (torch-mlir FX import of a (conv 3x3) -> ReLU -> max_pool2d(3, 2, 1) ->
// b (conv 1x1)) runs on int8: max commutes with the monotonic quantization.
// apply-plan makes the pool's input a point too, and the pool's result takes its input's parameters (a.output),
// whatever the plan says for b.input.
// PLAN: quant.qcast %{{.*}} {quantune.point = "a.output"} : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!quant.uniform<i8:f32, 3.125000e-02:-128>>
// PLAN: linalg.pooling_nchw_max
// PLAN: quant.qcast %{{.*}} {quantune.point = "b.input"} : tensor<1x4x4x4xf32> to tensor<1x4x4x4x!quant.uniform<i8:f32, 3.125000e-02:-128>>

// lower-quant: a's epilogue writes i8, the pool reads it channels-last, padded with the smallest int8 (the
// fp32 pool pads with -inf), and b reads the pool's i8 result: no dequantize, fp32 pool or quantize between.
// LOWER-LABEL: func.func @main
// LOWER: %[[A:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x8x8x4xi8>)
// LOWER: tensor.pad %[[A]] low[0, 1, 1, 0] high[0, 1, 1, 0]
// LOWER: tensor.yield %c-128_i8 : i8
// LOWER: %[[POOL:.*]] = linalg.pooling_nhwc_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%{{.*}}, %{{.*}} : tensor<1x10x10x4xi8>, tensor<3x3xi8>) outs(%{{.*}} : tensor<1x4x4x4xi8>)
// LOWER-NOT: f32
// LOWER: tensor.collapse_shape %[[POOL]] {{\[\[}}0, 1, 2], [3]] : tensor<1x4x4x4xi8> into tensor<16x4xi8>
// LOWER: linalg.matmul {quantune.layer = "b"}
// LOWER-NOT: quant.

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
module {
  func.func @main(%arg0: tensor<1x2x8x8xf32>) -> tensor<1x4x4x4xf32> {
    %cst = arith.constant 0.000000e+00 : f32
    %cst_0 = arith.constant 0xFF800000 : f32
    %cst_1 = arith.constant dense_resource<torch_tensor_4_torch.float32_1> : tensor<4xf32>
    %cst_2 = arith.constant dense_resource<torch_tensor_4_4_1_1_torch.float32> : tensor<4x4x1x1xf32>
    %cst_3 = arith.constant dense_resource<torch_tensor_4_2_3_3_torch.float32> : tensor<4x2x3x3xf32>
    %cst_4 = arith.constant dense_resource<torch_tensor_4_torch.float32> : tensor<4xf32>
    %padded = tensor.pad %arg0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
    %0 = tensor.empty() : tensor<1x4x8x8xf32>
    %broadcasted = linalg.broadcast ins(%cst_4 : tensor<4xf32>) outs(%0 : tensor<1x4x8x8xf32>) dimensions = [0, 2, 3] 
    %1 = linalg.conv_2d_nchw_fchw {quantune.layer = "a", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %cst_3 : tensor<1x2x10x10xf32>, tensor<4x2x3x3xf32>) outs(%broadcasted : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x4x8x8xf32>) outs(%0 : tensor<1x4x8x8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %8 = arith.cmpf ugt, %in, %cst : f32
      %9 = arith.select %8, %in, %cst : f32
      linalg.yield %9 : f32
    } -> tensor<1x4x8x8xf32>
    %padded_5 = tensor.pad %2 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst_0 : f32
    } : tensor<1x4x8x8xf32> to tensor<1x4x10x10xf32>
    %3 = tensor.empty() : tensor<1x4x4x4xf32>
    %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %5 = tensor.empty() : tensor<3x3xf32>
    %6 = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%padded_5, %5 : tensor<1x4x10x10xf32>, tensor<3x3xf32>) outs(%4 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %broadcasted_6 = linalg.broadcast ins(%cst_1 : tensor<4xf32>) outs(%3 : tensor<1x4x4x4xf32>) dimensions = [0, 2, 3] 
    %7 = linalg.conv_2d_nchw_fchw {quantune.layer = "b", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%6, %cst_2 : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) outs(%broadcasted_6 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    return %7 : tensor<1x4x4x4xf32>
  }
}

{-#
  dialect_resources: {
    builtin: {
      torch_tensor_4_torch.float32_1: "0x040000005C43B73E48713F3E4A5FFDBE0011A6BE",
      torch_tensor_4_4_1_1_torch.float32: "0x0400000078CACB3DF89CDEBE90663C3DAC27A0BE8C94EEBE3E74E33EF0A6C23EFE5DFFBE08AABF3DC880ACBDB882A8BD1C5F6ABE8CE4443E34A197BEDCB13B3E1676813E",
      torch_tensor_4_2_3_3_torch.float32: "0x040000002E4CE7BABE79013E42A646BE27A031BEC9EBB9BDC771813DE50699BB015F3F3E7D5AABBC74777F3D3EE291BD7AC53DBD029566BE0BD91FBED4FCC6BD880D0F3CE4D5BE3D2BD2103E94A023BEB234D2BDDF54AF3DF56B483EDFAF46BDA39C343EBF9C1BBD4750CC3C818B5A3ED6E65FBED9F117BE3B6A74BDDE29BCBDD388503EAE711CBE0936DEBD8D9F28BE2B0C62BE1EE40CBEC9784F3ED265D73DD5F5E93D62184B3C4F7BF7BD4A56233D115B61BEE0652EBE11DBF8BD5A48183E94830D3E4915D6BD4C570BBC225D1A3E6EF16F3E0F95BF3D6F6C023DF7D3213EE11C0EBE40E7333D86203BBE5C4827BE435DF9BDC06ADA3D5221C23D3DF80EBE25D5913DD97F043EAEB5F3BC8A72133C39B25F3DCABB153E69C0673E3DFF39BED1E6B0BD",
      torch_tensor_4_torch.float32: "0x040000008AB6BD3D5BFA473E5008523E00F7543E"
    }
  }
#-}
