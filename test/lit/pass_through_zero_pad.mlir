// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/pass_net_plan.json %s | quantune-opt --quantune-lower-quant | FileCheck %s --check-prefix=LOWER
// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/pass_net_plan.json %s | quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' | FileCheck %s --check-prefix=KERNELS
// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/pass_net_zero_point_plan.json %s | quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' | FileCheck %s --check-prefix=FILL

// pass_through.mlir's network, its first max pool preceded by a padding of zeros past the bottom and right edges
// instead of a -inf padding (a Caffe-style ceil-mode pool exported to ONNX: an explicit Pad, then MaxPool):
// quantize(pad(x, 0)) = pad(quantize(x), quantize(0)), so the pool still runs on int8, its padding quantize(0)
// at the pool's parameters.

// Zero point -128: quantize(0) is the int8 minimum, and the padding is -128 as for -inf.
// LOWER-LABEL: func.func @main
// LOWER: %[[A:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x8x8x4xi8>)
// LOWER-NOT: tensor<{{[0-9x]*}}f32>
// LOWER: tensor.pad %[[A]] low[0, 0, 0, 0] high[0, 1, 1, 0]
// LOWER: tensor.yield %c-128_i8 : i8
// LOWER: linalg.pooling_nhwc_max {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x9x9x4xi8>, tensor<3x3xi8>) outs(%{{.*}} : tensor<1x4x4x4xi8>)
// LOWER: linalg.matmul {quantune.layer = "b"}

// The kernel skips the taps in the padding, which is right for a padding with the minimum: both pools are
// kernel dispatches (no top or left padding on the first).
// KERNELS: call @quantune_max_pool_s8_avx512({{.*}}, %c8_i64, %c8_i64, %c4_i64, %c4_i64, %c3_i64, %c3_i64, %c2_i64, %c0_i64, %c0_i64,
// KERNELS-LABEL: func.func @main
// KERNELS-NOT: tensor.pad
// KERNELS: flow.dispatch {{.*}} : (tensor<1x8x8x4xi8>) -> tensor<1x4x4x4xi8>

// Zero point -100 at the pool (b and c read it with scale 1/32, zero point -100): the padding is -100, above
// the minimum, so the kernel, which skips the padding, would be wrong; the pool is integer linalg instead.
// FILL-LABEL: func.func @main
// FILL: %[[A:.*]] = flow.dispatch {{.*}} : (tensor<1x8x8x4xi8>, tensor<4xi8>, tensor<576xi8>, {{.*}}) -> tensor<1x8x8x4xi8>
// FILL-NOT: tensor<{{[0-9x]*}}f32>
// FILL: tensor.pad %[[A]] low[0, 0, 0, 0] high[0, 1, 1, 0]
// FILL: tensor.yield %c-100_i8 : i8
// FILL: %[[POOL:.*]] = linalg.pooling_nhwc_max {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x9x9x4xi8>, tensor<3x3xi8>) outs(%{{.*}} : tensor<1x4x4x4xi8>)
// FILL: flow.dispatch {{.*}}(%[[POOL]], {{.*}} -> tensor<1x4x4x4xi8>

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
module {
  func.func @main(%arg0: tensor<1x2x8x8xf32>) -> tensor<1x4x2x2xf32> {
    %cst = arith.constant 0.000000e+00 : f32
    %cst_0 = arith.constant 0xFF800000 : f32
    %cst_1 = arith.constant dense_resource<torch_tensor_4_torch.float32_3> : tensor<4xf32>
    %cst_2 = arith.constant dense_resource<torch_tensor_4_8_1_1_torch.float32> : tensor<4x8x1x1xf32>
    %cst_3 = arith.constant dense_resource<torch_tensor_4_torch.float32_2> : tensor<4xf32>
    %cst_4 = arith.constant dense_resource<torch_tensor_4_4_3_3_torch.float32> : tensor<4x4x3x3xf32>
    %cst_5 = arith.constant dense_resource<torch_tensor_4_torch.float32_1> : tensor<4xf32>
    %cst_6 = arith.constant dense_resource<torch_tensor_4_4_1_1_torch.float32> : tensor<4x4x1x1xf32>
    %cst_7 = arith.constant dense_resource<torch_tensor_4_2_3_3_torch.float32> : tensor<4x2x3x3xf32>
    %cst_8 = arith.constant dense_resource<torch_tensor_4_torch.float32> : tensor<4xf32>
    %padded = tensor.pad %arg0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x2x8x8xf32> to tensor<1x2x10x10xf32>
    %0 = tensor.empty() : tensor<1x4x8x8xf32>
    %broadcasted = linalg.broadcast ins(%cst_8 : tensor<4xf32>) outs(%0 : tensor<1x4x8x8xf32>) dimensions = [0, 2, 3] 
    %1 = linalg.conv_2d_nchw_fchw {quantune.layer = "a", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %cst_7 : tensor<1x2x10x10xf32>, tensor<4x2x3x3xf32>) outs(%broadcasted : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x4x8x8xf32>) outs(%0 : tensor<1x4x8x8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %16 = arith.cmpf ugt, %in, %cst : f32
      %17 = arith.select %16, %in, %cst : f32
      linalg.yield %17 : f32
    } -> tensor<1x4x8x8xf32>
    %padded_9 = tensor.pad %2 low[0, 0, 0, 0] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x4x8x8xf32> to tensor<1x4x9x9xf32>
    %3 = tensor.empty() : tensor<1x4x4x4xf32>
    %4 = linalg.fill ins(%cst_0 : f32) outs(%3 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %5 = tensor.empty() : tensor<3x3xf32>
    %6 = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%padded_9, %5 : tensor<1x4x9x9xf32>, tensor<3x3xf32>) outs(%4 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %broadcasted_10 = linalg.broadcast ins(%cst_5 : tensor<4xf32>) outs(%3 : tensor<1x4x4x4xf32>) dimensions = [0, 2, 3] 
    %7 = linalg.conv_2d_nchw_fchw {quantune.layer = "b", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%6, %cst_6 : tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) outs(%broadcasted_10 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %8 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%7 : tensor<1x4x4x4xf32>) outs(%3 : tensor<1x4x4x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %16 = arith.cmpf ugt, %in, %cst : f32
      %17 = arith.select %16, %in, %cst : f32
      linalg.yield %17 : f32
    } -> tensor<1x4x4x4xf32>
    %padded_11 = tensor.pad %6 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x4x4x4xf32> to tensor<1x4x6x6xf32>
    %broadcasted_12 = linalg.broadcast ins(%cst_3 : tensor<4xf32>) outs(%3 : tensor<1x4x4x4xf32>) dimensions = [0, 2, 3] 
    %9 = linalg.conv_2d_nchw_fchw {quantune.layer = "c", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded_11, %cst_4 : tensor<1x4x6x6xf32>, tensor<4x4x3x3xf32>) outs(%broadcasted_12 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %10 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%9 : tensor<1x4x4x4xf32>) outs(%3 : tensor<1x4x4x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %16 = arith.cmpf ugt, %in, %cst : f32
      %17 = arith.select %16, %in, %cst : f32
      linalg.yield %17 : f32
    } -> tensor<1x4x4x4xf32>
    %concat = tensor.concat dim(1) %8, %10 : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x8x4x4xf32>
    %padded_13 = tensor.pad %concat low[0, 0, 0, 0] high[0, 0, 2, 2] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst_0 : f32
    } : tensor<1x8x4x4xf32> to tensor<1x8x6x6xf32>
    %11 = tensor.empty() : tensor<1x8x2x2xf32>
    %12 = linalg.fill ins(%cst_0 : f32) outs(%11 : tensor<1x8x2x2xf32>) -> tensor<1x8x2x2xf32>
    %13 = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%padded_13, %5 : tensor<1x8x6x6xf32>, tensor<3x3xf32>) outs(%12 : tensor<1x8x2x2xf32>) -> tensor<1x8x2x2xf32>
    %14 = tensor.empty() : tensor<1x4x2x2xf32>
    %broadcasted_14 = linalg.broadcast ins(%cst_1 : tensor<4xf32>) outs(%14 : tensor<1x4x2x2xf32>) dimensions = [0, 2, 3] 
    %15 = linalg.conv_2d_nchw_fchw {quantune.layer = "d", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%13, %cst_2 : tensor<1x8x2x2xf32>, tensor<4x8x1x1xf32>) outs(%broadcasted_14 : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
    return %15 : tensor<1x4x2x2xf32>
  }
}

{-#
  dialect_resources: {
    builtin: {
      torch_tensor_4_torch.float32_3: "0x040000004ABB9E3EAA1C6BBE8BBE24BD8871CF3D",
      torch_tensor_4_8_1_1_torch.float32: "0x04000000D3623A3EF80FAFBE9CDF823E5FB095BE6EAC9F3BE83576BD0DAD3EBE73673F3D33B0953E76A9D3BDB2F056BE5DE505BEC16AB3BE0D6C233EC1DF2DBE5D9A71BE2C9250BE0528503EE5B93F3EB1EF8A3EDE51033E0AD0F1BD9257CABD04EAD53DDECD943EF8DEC43D034C2BBEAA2F2ABEEF25ABBE7A6F9C3D762B4BBE7864A1BE",
      torch_tensor_4_torch.float32_2: "0x040000004069613DF709003EE0C25BBDABE28B39",
      torch_tensor_4_4_3_3_torch.float32: "0x04000000D06EAA3D10E20E3D642205BEE08BC4BDF78D203E1BFFE53D76D494BD1BD12BBDA69322BE565344BBA68500BE17A503BE6B7516BC80FFCC3C4EC98BBD208ACA3DF6B6CFBD9BDB1A3E6BEAE93D98EB0FBEB0E729BD006EF63B2034C73C36E9213DE8F2853D4091233CDE8BA6BDE383A13D3AB623BE804FCABD50E42ABD9E44A6BDD0D16EBDD2E10BBEAB3611BDA6EC113DF35DDEBDD6220CBC0058F43D4B5B8CBC56C8973B56926BBCB6280A3D8008D93DD2A9213E08C4D83D8308223E807C45BC445019BE80D1A1BD686AE83DAB9C8DBA93A8A9BDACC802BE00B81FBE480B10BE4B780ABD7330BB3DF089B83DAC9824BEE8EAD43D5C8C05BEA05210BDBE668ABDF67D03BD600906BDD22519BE2E5C13BE8BA5D5BC00410D3B260F9BBD7B94803D279C19BE004938BC6C16163E263A8BBDCF1C1A3EF63A773D1F051ABEF0F5D73D4B8D9DBCA05F98BD6379083E38EA09BECB81923CD6ED0EBD1EC0F33D0B903E3D3303A43D0017713D002A24BD8B910FBDABA40CBE10F3B83D6F81073E7B8CE93DE6C4F0BD2B93F33B169EF0BD0BE6BBBD96E5C6BD464C693DB067CBBD564D6EBB80BFE53B0608DC3DA70201BE5B54EABDFB32C6BD1EE9EE3D106575BD96F40F3E80DB763D00E3AC3C009EA2BA5BF306BDAB4DAB3C20E21BBDAB7E99BA0035AE3C107F05BE4EE7B2BDE6CF093E04810ABE2B1444BC80D4283EC09A763D80A09A3BC4E613BEC816A93D0B20F3BDE0C841BDBB0B65BD4B30CABC56F3EE3A64C40C3E5672AA3C6BDD183E40CCD03DB3CBD7BDE316993D8649F1BD68AA90BDABC9483D",
      torch_tensor_4_torch.float32_1: "0x040000005C43B73E48713F3E4A5FFDBE0011A6BE",
      torch_tensor_4_4_1_1_torch.float32: "0x0400000078CACB3DF89CDEBE90663C3DAC27A0BE8C94EEBE3E74E33EF0A6C23EFE5DFFBE08AABF3DC880ACBDB882A8BD1C5F6ABE8CE4443E34A197BEDCB13B3E1676813E",
      torch_tensor_4_2_3_3_torch.float32: "0x040000002E4CE7BABE79013E42A646BE27A031BEC9EBB9BDC771813DE50699BB015F3F3E7D5AABBC74777F3D3EE291BD7AC53DBD029566BE0BD91FBED4FCC6BD880D0F3CE4D5BE3D2BD2103E94A023BEB234D2BDDF54AF3DF56B483EDFAF46BDA39C343EBF9C1BBD4750CC3C818B5A3ED6E65FBED9F117BE3B6A74BDDE29BCBDD388503EAE711CBE0936DEBD8D9F28BE2B0C62BE1EE40CBEC9784F3ED265D73DD5F5E93D62184B3C4F7BF7BD4A56233D115B61BEE0652EBE11DBF8BD5A48183E94830D3E4915D6BD4C570BBC225D1A3E6EF16F3E0F95BF3D6F6C023DF7D3213EE11C0EBE40E7333D86203BBE5C4827BE435DF9BDC06ADA3D5221C23D3DF80EBE25D5913DD97F043EAEB5F3BC8A72133C39B25F3DCABB153E69C0673E3DFF39BED1E6B0BD",
      torch_tensor_4_torch.float32: "0x040000008AB6BD3D5BFA473E5008523E00F7543E"
    }
  }
#-}
