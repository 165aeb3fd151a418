// RUN: quantune-opt --quantune-lower-quant %s | FileCheck %s
// RUN: quantune-opt --quantune-lower-quant %s | FileCheck %s --check-prefix=CONTRACT

// Input: apply_plan.mlir's net after quantune-apply-plan (Inputs/lit_net_plan.json): inputs at scale
// 1/16, zero point -3; outputs at 1/32, zero point -128; layer c fp32.

// Contract: nothing of the quant dialect reaches iree-compile.
// CONTRACT-NOT: quant.
// CHECK-LABEL: func.func @main
// int8 tensors are stored channels-last (NHWC), the layout of IREE's fast int8 kernels; fp32 tensors keep
// the model's NCHW. fp32 -> int8 at the model input: one elementwise quantize that also transposes (x / scale,
// round half to even, + zero point, saturate).
// CHECK: linalg.generic {{.*}} ins(%arg0 : tensor<1x2x6x6xf32>) outs(%{{.*}} : tensor<1x6x6x2xi8>)
// CHECK: arith.divf
// CHECK: math.roundeven
// CHECK: arith.fptosi %{{.*}} : f32 to i8
// A dense conv: padding takes the input zero point, so that the zero-point correction folded into the bias
// stays exact; IREE's im2col (run on this layer alone) gives an i8 x i8 -> i32 matmul on HWCF weights.
// CHECK: tensor.pad %{{.*}} low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK: tensor.yield %c-3_i8 : i8
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<1x8x8x2xi8>) outs(%{{.*}} : tensor<1x6x6x3x3x2xi8>)
// CHECK: %[[A:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<36x18xi8>, tensor<18x4xi8>) outs(%{{.*}} : tensor<36x4xi32>)
// CHECK: %[[AACC:.*]] = tensor.expand_shape %[[A]] {{.*}} into tensor<1x6x6x4xi32>
// The epilogue (quantization.requantize): + i32 bias, to f32, * per-channel multiplier, ReLU and saturation as
// one clamp (less the output zero point), round half to even, + output zero point, i8 out.
// CHECK: %[[AOUT:.*]] = linalg.generic {{.*}} ins(%[[AACC]], %{{.*}}, %{{.*}} : tensor<1x6x6x4xi32>, tensor<4xi32>, tensor<4xf32>) outs(%{{.*}} : tensor<1x6x6x4xi8>)
// CHECK: arith.addi
// CHECK: arith.sitofp %{{.*}} : i32 to f32
// CHECK: arith.mulf
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: math.roundeven
// CHECK: arith.fptosi %{{.*}} : f32 to i32
// CHECK: arith.addi
// CHECK: arith.trunci %{{.*}} : i32 to i8
// int8 -> int8: b (1x1) reads a's i8 output directly, as a matmul over the pixels, no dequantize/quantize.
// CHECK: %[[BIN:.*]] = tensor.collapse_shape %[[AOUT]] {{\[\[}}0, 1, 2], [3]] : tensor<1x6x6x4xi8> into tensor<36x4xi8>
// CHECK: %[[B:.*]] = linalg.matmul {quantune.layer = "b"} ins(%[[BIN]], %{{.*}} : tensor<36x4xi8>, tensor<4x4xi8>)
// CHECK: %[[BACC:.*]] = tensor.expand_shape %[[B]]
// CHECK: %[[BOUT:.*]] = linalg.generic {{.*}} ins(%[[BACC]],
// The residual add: j's epilogue adds b's i8 output, minus its zero point, times its multiplier (1 here: b's
// output and j's share a scale, so the multiply folds away), before rounding.
// CHECK: %[[J:.*]] = linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<36x36xi8>, tensor<36x4xi8>)
// CHECK: %[[JACC:.*]] = tensor.expand_shape %[[J]]
// CHECK: linalg.generic {{.*}} ins(%[[JACC]], %{{.*}}, %{{.*}}, %[[BOUT]] : tensor<1x6x6x4xi32>, tensor<4xi32>, tensor<4xf32>, tensor<1x6x6x4xi8>)
// CHECK: arith.extsi %{{.*}} : i8 to i32
// CHECK: arith.subi
// CHECK: %[[RF:.*]] = arith.sitofp
// CHECK: arith.addf %{{.*}}, %[[RF]] : f32
// CHECK: math.roundeven
// CHECK: linalg.yield %{{.*}} : i8
// int8 -> fp32: g (depthwise, channels-last) feeds only the fp32 layer c, so its epilogue writes f32
// (acc + bias) * scale, back in NCHW.
// CHECK: %[[G:.*]] = linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "g"{{.*}} : tensor<1x8x8x4xi8>, tensor<3x3x4xi8>) outs(%{{.*}} : tensor<1x6x6x4xi32>)
// CHECK: linalg.generic {{.*}} ins(%[[G]], %{{.*}}, %{{.*}} : tensor<1x6x6x4xi32>, tensor<4xi32>, tensor<4xf32>) outs(%{{.*}} : tensor<1x4x6x6xf32>)
// CHECK: arith.sitofp
// CHECK: arith.mulf
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "c"{{.*}} : tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>)
// fp32 -> int8 before d: quantize into NHWC, then d's stride-2 im2col.
// CHECK: math.roundeven
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<1x8x8x4xi8>) outs(%{{.*}} : tensor<1x3x3x3x3x4xi8>)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<9x36xi8>, tensor<36x4xi8>)
// The linear layer: i8 x i8 -> i32 matmul on the transposed weight, f32 logits out.
// CHECK: %[[H:.*]] = linalg.matmul {quantune.layer = "h"} ins(%{{.*}}, %{{.*}} : tensor<1x4xi8>, tensor<4x3xi8>) outs(%{{.*}} : tensor<1x3xi32>)
// CHECK: %[[LOGITS:.*]] = linalg.generic {{.*}} ins(%[[H]], %{{.*}}, %{{.*}} : tensor<1x3xi32>, tensor<3xi32>, tensor<3xf32>)
// CHECK: return %[[LOGITS]] : tensor<1x3xf32>

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#map1 = affine_map<(d0, d1, d2, d3) -> (d0, d1)>
#map2 = affine_map<(d0, d1) -> (d0, d1)>
#map3 = affine_map<(d0, d1) -> (d1)>
module {
  func.func @main(%arg0: tensor<1x2x6x6xf32>) -> tensor<1x3xf32> {
    %cst = arith.constant 0.000000e+00 : f32
    %cst_0 = arith.constant dense_resource<torch_tensor_3_torch.float32> : tensor<3xf32>
    %cst_1 = arith.constant dense<[[127, 65, -84, 107], [9, 75, -127, -46], [-127, -50, 28, -102]]> : tensor<3x4xi8>
    %0 = quant.scast %cst_1 : tensor<3x4xi8> to tensor<3x4x!quant.uniform<i8<-127:127>:f32:0, {0.0039133687657634105,0.0031568074789572889,0.0038656597062358706}>>
    %1 = quant.dcast %0 : tensor<3x4x!quant.uniform<i8<-127:127>:f32:0, {0.0039133687657634105,0.0031568074789572889,0.0038656597062358706}>> to tensor<3x4xf32>
    %cst_2 = arith.constant dense_resource<torch_tensor_3_4_torch.float32> : tensor<3x4xf32>
    %cst_3 = arith.constant dense_resource<torch_tensor_4_torch.float32_5> : tensor<4xf32>
    %cst_4 = arith.constant dense<"0x19A2153632F098EC2CD23055BE01350A0B109C0A58724B113BC297937F51A832607F6F62E2D36A48B3743E46AF25D365E9321737D43FA61DA98199664679678DA8EBAC599FC184B768685B6271DF38712A7F424FD43D0FE2B8B99E555AF2B6625109C47534A07A60D247B8EC6F05A4D4DDE70D7907AF073F4189E99FC82FA3316F09A9D11D9C41898281E558846DCC26"> : tensor<4x4x3x3xi8>
    %2 = quant.scast %cst_4 : tensor<4x4x3x3xi8> to tensor<4x4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0013118305309550969,0.0012946687345429667,0.0013119112553558951,0.0012751451627476009}>>
    %3 = quant.dcast %2 : tensor<4x4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0013118305309550969,0.0012946687345429667,0.0013119112553558951,0.0012751451627476009}>> to tensor<4x4x3x3xf32>
    %cst_5 = arith.constant dense_resource<torch_tensor_4_4_3_3_torch.float32_1> : tensor<4x4x3x3xf32>
    %cst_6 = arith.constant dense_resource<torch_tensor_4_torch.float32_4> : tensor<4xf32>
    %cst_7 = arith.constant dense_resource<torch_tensor_4_4_1_1_torch.float32_1> : tensor<4x4x1x1xf32>
    %cst_8 = arith.constant dense_resource<torch_tensor_4_torch.float32_3> : tensor<4xf32>
    %cst_9 = arith.constant dense_resource<torch_tensor_4_1_3_3_torch.float32> : tensor<4x1x3x3xf32>
    %cst_10 = arith.constant dense_resource<torch_tensor_4_torch.float32_2> : tensor<4xf32>
    %cst_11 = arith.constant dense<"0x421C99B47D59C6DF82FE9C9AF914CA4FAF785B90DF06131F3408BF3F81B2DFC0D293E41CAAF95EF204F51B547D547DF68AC25AFFBF9B8591E54847815299E4CBE7E68A8EEB02C43281F77CC77F338159F0C1708E0FE364274432DEE28C4C70609D069DB3AE30ACFD065B969FB55AD26C2E10FFE710E3FF109CBD6898F77F2E049140A5DCD5ED016A10734FAF3AA5CA26"> : tensor<4x4x3x3xi8>
    %4 = quant.scast %cst_11 : tensor<4x4x3x3xi8> to tensor<4x4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0012588569029109685,0.0012656586376700815,0.0011850434729433435,0.0012982135682594118}>>
    %5 = quant.dcast %4 : tensor<4x4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0012588569029109685,0.0012656586376700815,0.0011850434729433435,0.0012982135682594118}>> to tensor<4x4x3x3xf32>
    %cst_12 = arith.constant dense_resource<torch_tensor_4_4_3_3_torch.float32> : tensor<4x4x3x3xf32>
    %cst_13 = arith.constant dense_resource<torch_tensor_4_torch.float32_1> : tensor<4xf32>
    %cst_14 = arith.constant dense<[[[[29]], [[-127]], [[13]], [[-91]]], [[[-119]], [[113]], [[97]], [[-127]]], [[[52]], [[-47]], [[-46]], [[-127]]], [[[82]], [[-127]], [[79]], [[108]]]]> : tensor<4x4x1x1xi8>
    %6 = quant.scast %cst_14 : tensor<4x4x1x1xi8> to tensor<4x4x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0034235537521482453,0.0039272754211125407,0.001802192428919274,0.0023319036003172865}>>
    %7 = quant.dcast %6 : tensor<4x4x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0034235537521482453,0.0039272754211125407,0.001802192428919274,0.0023319036003172865}>> to tensor<4x4x1x1xf32>
    %cst_15 = arith.constant dense_resource<torch_tensor_4_4_1_1_torch.float32> : tensor<4x4x1x1xf32>
    %cst_16 = arith.constant dense<[[[[-1, 71, -109], [-98, -51, 36], [-3, 105, -12]], [[35, -40, -26], [-127, -88, -55], [5, 53, 80]]], [[[-92, -59, 49], [113, -28, 101], [-22, 14, 123]], [[-126, -85, -34], [-53, 117, -88], [-62, -95, -127]]], [[[-75, 110, 57], [62, 7, -65], [22, -119, -92]], [[-66, 81, 75], [-57, -5, 82], [127, 51, 17]]], [[[89, -78, 25], [-103, -92, -68], [60, 53, -78]], [[40, 73, -17], [5, 31, 82], [127, -102, -48]]]]> : tensor<4x2x3x3xi8>
    %8 = quant.scast %cst_16 : tensor<4x2x3x3xi8> to tensor<4x2x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0017730535015346497,0.0017381853710009356,0.0018450347926672987,0.0017820466456450815}>>
    %9 = quant.dcast %8 : tensor<4x2x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0017730535015346497,0.0017381853710009356,0.0018450347926672987,0.0017820466456450815}>> to tensor<4x2x3x3xf32>
    %cst_17 = arith.constant dense_resource<torch_tensor_4_2_3_3_torch.float32> : tensor<4x2x3x3xf32>
    %cst_18 = arith.constant dense_resource<torch_tensor_4_torch.float32> : tensor<4xf32>
    %cst_19 = arith.constant 6.000000e+00 : f32
    %cst_20 = arith.constant 9.000000e+00 : f32
    %10 = quant.qcast %arg0 {quantune.point = "a.input"} : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!quant.uniform<i8:f32, 6.250000e-02:-3>>
    %11 = quant.dcast %10 : tensor<1x2x6x6x!quant.uniform<i8:f32, 6.250000e-02:-3>> to tensor<1x2x6x6xf32>
    %padded = tensor.pad %11 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x2x6x6xf32> to tensor<1x2x8x8xf32>
    %12 = tensor.empty() : tensor<1x4x6x6xf32>
    %broadcasted = linalg.broadcast ins(%cst_18 : tensor<4xf32>) outs(%12 : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3] 
    %13 = linalg.conv_2d_nchw_fchw {quantune.layer = "a", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %9 : tensor<1x2x8x8xf32>, tensor<4x2x3x3xf32>) outs(%broadcasted : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %14 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%13 : tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.cmpf ugt, %in, %cst : f32
      %48 = arith.select %47, %in, %cst : f32
      linalg.yield %48 : f32
    } -> tensor<1x4x6x6xf32>
    %broadcasted_21 = linalg.broadcast ins(%cst_13 : tensor<4xf32>) outs(%12 : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3] 
    %15 = quant.qcast %14 {quantune.point = "a.output"} : tensor<1x4x6x6xf32> to tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>>
    %16 = quant.dcast %15 : tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>> to tensor<1x4x6x6xf32>
    %17 = linalg.conv_2d_nchw_fchw {quantune.layer = "b", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%16, %7 : tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>) outs(%broadcasted_21 : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %18 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%17 : tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.cmpf ugt, %in, %cst : f32
      %48 = arith.select %47, %in, %cst : f32
      linalg.yield %48 : f32
    } -> tensor<1x4x6x6xf32>
    %19 = quant.qcast %18 {quantune.point = "b.output"} : tensor<1x4x6x6xf32> to tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>>
    %20 = quant.dcast %19 : tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>> to tensor<1x4x6x6xf32>
    %padded_22 = tensor.pad %20 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x4x6x6xf32> to tensor<1x4x8x8xf32>
    %broadcasted_23 = linalg.broadcast ins(%cst_10 : tensor<4xf32>) outs(%12 : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3] 
    %21 = linalg.conv_2d_nchw_fchw {quantune.layer = "j", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded_22, %5 : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>) outs(%broadcasted_23 : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %22 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%21, %20 : tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %in_30: f32, %out: f32):
      %47 = arith.addf %in, %in_30 : f32
      linalg.yield %47 : f32
    } -> tensor<1x4x6x6xf32>
    %23 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%22 : tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.cmpf ugt, %in, %cst : f32
      %48 = arith.select %47, %in, %cst : f32
      linalg.yield %48 : f32
    } -> tensor<1x4x6x6xf32>
    %24 = quant.qcast %23 {quantune.point = "j.output"} : tensor<1x4x6x6xf32> to tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>>
    %25 = quant.dcast %24 : tensor<1x4x6x6x!quant.uniform<i8:f32, 3.125000e-02:-128>> to tensor<1x4x6x6xf32>
    %padded_24 = tensor.pad %25 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x4x6x6xf32> to tensor<1x4x8x8xf32>
    %broadcasted_25 = linalg.broadcast ins(%cst_8 : tensor<4xf32>) outs(%12 : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3] 
    %cst_26 = arith.constant dense<[[[68, -127, 95], [-109, 2, -22], [-69, 17, 109]], [[-37, -76, -47], [-127, 58, -62], [-86, -74, 74]], [[82, 119, 56], [-52, -43, 46], [127, 42, -73]], [[-63, -127, 29], [-75, -120, 118], [-87, -15, 38]]]> : tensor<4x3x3xi8>
    %26 = quant.scast %cst_26 : tensor<4x3x3xi8> to tensor<4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0025382997013452483,0.0026014393239509404,0.0021575715128831037,0.002481545988968977}>>
    %27 = quant.dcast %26 : tensor<4x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0025382997013452483,0.0026014393239509404,0.0021575715128831037,0.002481545988968977}>> to tensor<4x3x3xf32>
    %collapsed = tensor.collapse_shape %cst_9 [[0, 1], [2], [3]] : tensor<4x1x3x3xf32> into tensor<4x3x3xf32>
    %28 = linalg.depthwise_conv_2d_nchw_chw {quantune.layer = "g", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded_24, %27 : tensor<1x4x8x8xf32>, tensor<4x3x3xf32>) outs(%broadcasted_25 : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %29 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%28 : tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.cmpf ult, %in, %cst : f32
      %48 = arith.select %47, %cst, %in : f32
      %49 = arith.cmpf ugt, %48, %cst_19 : f32
      %50 = arith.select %49, %cst_19, %48 : f32
      linalg.yield %50 : f32
    } -> tensor<1x4x6x6xf32>
    %broadcasted_27 = linalg.broadcast ins(%cst_6 : tensor<4xf32>) outs(%12 : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3] 
    %30 = linalg.conv_2d_nchw_fchw {quantune.layer = "c", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%29, %cst_7 : tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>) outs(%broadcasted_27 : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %31 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%30 : tensor<1x4x6x6xf32>) outs(%12 : tensor<1x4x6x6xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.cmpf ugt, %in, %cst : f32
      %48 = arith.select %47, %in, %cst : f32
      linalg.yield %48 : f32
    } -> tensor<1x4x6x6xf32>
    %32 = quant.qcast %31 {quantune.point = "d.input"} : tensor<1x4x6x6xf32> to tensor<1x4x6x6x!quant.uniform<i8:f32, 6.250000e-02:-3>>
    %33 = quant.dcast %32 : tensor<1x4x6x6x!quant.uniform<i8:f32, 6.250000e-02:-3>> to tensor<1x4x6x6xf32>
    %padded_28 = tensor.pad %33 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%arg1: index, %arg2: index, %arg3: index, %arg4: index):
      tensor.yield %cst : f32
    } : tensor<1x4x6x6xf32> to tensor<1x4x8x8xf32>
    %34 = tensor.empty() : tensor<1x4x3x3xf32>
    %broadcasted_29 = linalg.broadcast ins(%cst_3 : tensor<4xf32>) outs(%34 : tensor<1x4x3x3xf32>) dimensions = [0, 2, 3] 
    %35 = linalg.conv_2d_nchw_fchw {quantune.layer = "d", dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%padded_28, %3 : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>) outs(%broadcasted_29 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
    %36 = tensor.empty() : tensor<1x4xf32>
    %37 = linalg.fill ins(%cst : f32) outs(%36 : tensor<1x4xf32>) -> tensor<1x4xf32>
    %38 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "reduction", "reduction"]} ins(%35 : tensor<1x4x3x3xf32>) outs(%37 : tensor<1x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.addf %in, %out : f32
      linalg.yield %47 : f32
    } -> tensor<1x4xf32>
    %39 = linalg.generic {indexing_maps = [#map2, #map2], iterator_types = ["parallel", "parallel"]} ins(%38 : tensor<1x4xf32>) outs(%36 : tensor<1x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %47 = arith.divf %in, %cst_20 : f32
      linalg.yield %47 : f32
    } -> tensor<1x4xf32>
    %40 = tensor.empty() : tensor<4x3xf32>
    %transposed = linalg.transpose ins(%1 : tensor<3x4xf32>) outs(%40 : tensor<4x3xf32>) permutation = [1, 0] 
    %41 = tensor.empty() : tensor<1x3xf32>
    %42 = linalg.fill ins(%cst : f32) outs(%41 : tensor<1x3xf32>) -> tensor<1x3xf32>
    %43 = quant.qcast %39 {quantune.point = "h.input"} : tensor<1x4xf32> to tensor<1x4x!quant.uniform<i8:f32, 6.250000e-02:-3>>
    %44 = quant.dcast %43 : tensor<1x4x!quant.uniform<i8:f32, 6.250000e-02:-3>> to tensor<1x4xf32>
    %45 = linalg.matmul {quantune.layer = "h"} ins(%44, %transposed : tensor<1x4xf32>, tensor<4x3xf32>) outs(%42 : tensor<1x3xf32>) -> tensor<1x3xf32>
    %46 = linalg.generic {indexing_maps = [#map2, #map3, #map2], iterator_types = ["parallel", "parallel"]} ins(%45, %cst_0 : tensor<1x3xf32>, tensor<3xf32>) outs(%41 : tensor<1x3xf32>) {
    ^bb0(%in: f32, %in_30: f32, %out: f32):
      %47 = arith.addf %in, %in_30 : f32
      linalg.yield %47 : f32
    } -> tensor<1x3xf32>
    return %46 : tensor<1x3xf32>
  }
}

{-#
  dialect_resources: {
    builtin: {
      torch_tensor_3_torch.float32: "0x040000001035233E2C6C893E18A78E3D",
      torch_tensor_3_4_torch.float32: "0x040000008076FE3E9655813E48FAA8BE48A7D53E2023DC3C80CC723EAC44CDBEC84313BE545CFBBE906B47BEA0E8DC3D5C00C9BE",
      torch_tensor_4_torch.float32_5: "0x04000000800DF93BB6E419BEF0890D3EE8C9B73D",
      torch_tensor_4_4_3_3_torch.float32_1: "0x040000000B10063DB86FFDBD7653E33C4362913D3E1C873DCBDDABBC12E90BBEC078D2BC6B186D3DE61679BD4E90813DB350E33D4E3AB2BD566FD73A18248D3D1606563CC018643CA07BAA3C522B06BE2B99563CF05CEC3D43CA193E769EC83D76F5B63C53689F3D3E0DA6BDF36D0DBE87C212BE3C422A3EBEACD83DEEF0EBBD4E8B853DC7E1003ED7992A3EE63A153E8339043EF6811CBD80936FBD2C200C3EB846BF3D4068CDBDAA6E193E0BEBA43DAB12BA3D8EF0D5BD60DB433D3B516FBDFE59053ECBADF5BCA6E2843D5683F23CFB39913D2BFD67BDA36CA63D5369EEBD062F1A3D80F1E6BD7C5E28BE0B0E09BE7ABC063E6BACB83D461F203E86B9083EC06918BEBEEFE8BD369DDCBC43ACDDBD4B05ED3D7C0601BE7B89A6BD2EE124BE5ECAC1BD975E0C3E2CBC0B3EDB56F43DC2C6033E27C1173E40CE2EBDF82F963D580D183EC6D6613D879C2A3E7609B13D7630D43D90ED6EBDF8C7A33DC0E29C3C5B0823BDB869C0BD1E87BFBD225303BEBE25E53D1EAAF23D6B649BBC5B86C5BDC2E8033E6647DA3D40FB4A3CD027A1BDD0D91C3EC8958B3D928F01BE9757233E8C99013E66D378BDD0E1BF3D1EF1C1BDA0F7D5BCCCE9103E56A8E13BAB65F1BD702B64BD7B4E39BDC0B403BDCBA9823C6CD61D3E6B33123CBBC0D2BD56F50B3C3BAAA33DA850A93D96FA1BBEEB50F4BCF6A8FDBD5BA491BDD6F5753D2064F2BDFBC37D3DAFDB103E9619333C967EE3BDD69674BDE611153D2F1A02BEF393A93D6EF11ABE8C0F24BE80D425BEF07C0ABD1686E53D4C8821BE1FDB0D3E888A88BD36F1473D",
      torch_tensor_4_torch.float32_4: "0x040000000C0677BEE0F4B73D22FB84BE40EFEB3D",
      torch_tensor_4_4_1_1_torch.float32_1: "0x0400000030BFA63D4662D43EA8A42BBEF8CF163E182AEABD6027B6BC52EA9BBEAC282D3E80E0213E40FD28BCC04CE6BD58CE9DBE1409B13E9492BEBEACBF513E6C292CBE",
      torch_tensor_4_torch.float32_3: "0x040000002BFD2D3C4EAD65BE1EF489BE1009883E",
      torch_tensor_4_1_3_3_torch.float32: "0x04000000F8B92F3EE70CA5BE03C7763ECB208DBEAB8A963B2B2168BD63C533BE2075343DA2208D3E8B8EC7BDC8A54ABE067AFCBDEF27A9BE68131A3E16EE23BE16C963BE83A444BE6E40443EDBC2343E8BFD823E769EF73DB0FBE3BD1BC5BEBD20AEC93D3F4B8C3E9B9CB93D138021BEFE7320BE2C5CA1BE207D933DE08C3FBE8B2998BE52A7953E6BAA5DBE8B521BBD6094C33D",
      torch_tensor_4_torch.float32_2: "0x040000004069613DF709003EE0C25BBDABE28B39",
      torch_tensor_4_4_3_3_torch.float32: "0x04000000D06EAA3D10E20E3D642205BEE08BC4BDF78D203E1BFFE53D76D494BD1BD12BBDA69322BE565344BBA68500BE17A503BE6B7516BC80FFCC3C4EC98BBD208ACA3DF6B6CFBD9BDB1A3E6BEAE93D98EB0FBEB0E729BD006EF63B2034C73C36E9213DE8F2853D4091233CDE8BA6BDE383A13D3AB623BE804FCABD50E42ABD9E44A6BDD0D16EBDD2E10BBEAB3611BDA6EC113DF35DDEBDD6220CBC0058F43D4B5B8CBC56C8973B56926BBCB6280A3D8008D93DD2A9213E08C4D83D8308223E807C45BC445019BE80D1A1BD686AE83DAB9C8DBA93A8A9BDACC802BE00B81FBE480B10BE4B780ABD7330BB3DF089B83DAC9824BEE8EAD43D5C8C05BEA05210BDBE668ABDF67D03BD600906BDD22519BE2E5C13BE8BA5D5BC00410D3B260F9BBD7B94803D279C19BE004938BC6C16163E263A8BBDCF1C1A3EF63A773D1F051ABEF0F5D73D4B8D9DBCA05F98BD6379083E38EA09BECB81923CD6ED0EBD1EC0F33D0B903E3D3303A43D0017713D002A24BD8B910FBDABA40CBE10F3B83D6F81073E7B8CE93DE6C4F0BD2B93F33B169EF0BD0BE6BBBD96E5C6BD464C693DB067CBBD564D6EBB80BFE53B0608DC3DA70201BE5B54EABDFB32C6BD1EE9EE3D106575BD96F40F3E80DB763D00E3AC3C009EA2BA5BF306BDAB4DAB3C20E21BBDAB7E99BA0035AE3C107F05BE4EE7B2BDE6CF093E04810ABE2B1444BC80D4283EC09A763D80A09A3BC4E613BEC816A93D0B20F3BDE0C841BDBB0B65BD4B30CABC56F3EE3A64C40C3E5672AA3C6BDD183E40CCD03DB3CBD7BDE316993D8649F1BD68AA90BDABC9483D",
      torch_tensor_4_torch.float32_1: "0x040000005C43B73E48713F3E4A5FFDBE0011A6BE",
      torch_tensor_4_4_1_1_torch.float32: "0x0400000078CACB3DF89CDEBE90663C3DAC27A0BE8C94EEBE3E74E33EF0A6C23EFE5DFFBE08AABF3DC880ACBDB882A8BD1C5F6ABE8CE4443E34A197BEDCB13B3E1676813E",
      torch_tensor_4_2_3_3_torch.float32: "0x040000002E4CE7BABE79013E42A646BE27A031BEC9EBB9BDC771813DE50699BB015F3F3E7D5AABBC74777F3D3EE291BD7AC53DBD029566BE0BD91FBED4FCC6BD880D0F3CE4D5BE3D2BD2103E94A023BEB234D2BDDF54AF3DF56B483EDFAF46BDA39C343EBF9C1BBD4750CC3C818B5A3ED6E65FBED9F117BE3B6A74BDDE29BCBDD388503EAE711CBE0936DEBD8D9F28BE2B0C62BE1EE40CBEC9784F3ED265D73DD5F5E93D62184B3C4F7BF7BD4A56233D115B61BEE0652EBE11DBF8BD5A48183E94830D3E4915D6BD4C570BBC225D1A3E6EF16F3E0F95BF3D6F6C023DF7D3213EE11C0EBE40E7333D86203BBE5C4827BE435DF9BDC06ADA3D5221C23D3DF80EBE25D5913DD97F043EAEB5F3BC8A72133C39B25F3DCABB153E69C0673E3DFF39BED1E6B0BD",
      torch_tensor_4_torch.float32: "0x040000008AB6BD3D5BFA473E5008523E00F7543E"
    }
  }
#-}
