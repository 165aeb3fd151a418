module {
  func.func @main(%arg0: tensor<1x8x4x4xf32>) -> (tensor<1x4x4x4xf32>, tensor<1x8x4x4xf32>) {
    %zero = arith.constant 0.000000e+00 : f32
    %six = arith.constant 6.000000e+00 : f32
    %dw_bias = arith.constant dense<0.125> : tensor<8xf32>
    %pw_bias = arith.constant dense<-0.25> : tensor<4xf32>
    %q0 = quant.qcast %arg0 {quantune.point = "dw.input"} : tensor<1x8x4x4xf32> to tensor<1x8x4x4x!quant.uniform<i8:f32, 6.250000e-02:-3>>
    %x0 = quant.dcast %q0 : tensor<1x8x4x4x!quant.uniform<i8:f32, 6.250000e-02:-3>> to tensor<1x8x4x4xf32>
    %padded = tensor.pad %x0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
    ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
      tensor.yield %zero : f32
    } : tensor<1x8x4x4xf32> to tensor<1x8x6x6xf32>
    %dw_i8 = arith.constant dense<[[[  44,   78, -122],  [  79,   -8,    4],  [  33,  -55,  122]], [[-114,  -57,  -30],  [  18,  -23,  -94],  [-116, -127, -115]], [[ -90,  127,  -79],  [  39,   64,  -68],  [ -56,  -17,  -60]], [[ 121,  -82,  101],  [  76,   88,  -98],  [ -27,   33,   -2]], [[  42,   45,   42],  [-112,  117,   14],  [ 103,  -58,  -35]], [[  97,  -80, -111],  [ -32,   46,  -96],  [  94,  -41,  -70]], [[  11,  101,   98],  [  95,  -49, -123],  [  71,   53,   69]], [[-127, -118,    1],  [ -42,  -16,  110],  [ -76,    7,  -45]]]> : tensor<8x3x3xi8>
    %dw_q = quant.scast %dw_i8 : tensor<8x3x3xi8> to tensor<8x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0024, 0.0030, 0.0024, 0.0029, 0.0026, 0.0022, 0.0027, 0.0027}>>
    %dw_w = quant.dcast %dw_q : tensor<8x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0024, 0.0030, 0.0024, 0.0029, 0.0026, 0.0022, 0.0027, 0.0027}>> to tensor<8x3x3xf32>
    %e0 = tensor.empty() : tensor<1x8x4x4xf32>
    %b0 = linalg.broadcast ins(%dw_bias : tensor<8xf32>) outs(%e0 : tensor<1x8x4x4xf32>) dimensions = [0, 2, 3]
    %dw = linalg.depthwise_conv_2d_nchw_chw {quantune.layer = "dw", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%padded, %dw_w : tensor<1x8x6x6xf32>, tensor<8x3x3xf32>) outs(%b0 : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
    %relu6 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%dw : tensor<1x8x4x4xf32>) outs(%e0 : tensor<1x8x4x4xf32>) {
    ^bb0(%in: f32, %out: f32):
      %c = arith.cmpf ult, %in, %zero : f32
      %s = arith.select %c, %zero, %in : f32
      %c2 = arith.cmpf ugt, %s, %six : f32
      %s2 = arith.select %c2, %six, %s : f32
      linalg.yield %s2 : f32
    } -> tensor<1x8x4x4xf32>
    %q1 = quant.qcast %relu6 {quantune.point = "pw.input"} : tensor<1x8x4x4xf32> to tensor<1x8x4x4x!quant.uniform<i8:f32, 2.500000e-02:-128>>
    %x1 = quant.dcast %q1 : tensor<1x8x4x4x!quant.uniform<i8:f32, 2.500000e-02:-128>> to tensor<1x8x4x4xf32>
    %pw_i8 = arith.constant dense<[[[[ -52]],  [[  78]],  [[ -88]],  [[ -47]],  [[ -97]],  [[ -89]],  [[ -56]],  [[  51]]], [[[  20]],  [[ -13]],  [[ -84]],  [[  76]],  [[  76]],  [[ -67]],  [[-112]],  [[ -46]]], [[[ -90]],  [[  76]],  [[   5]],  [[   2]],  [[ -53]],  [[   2]],  [[ 119]],  [[ -67]]], [[[  68]],  [[-124]],  [[ -47]],  [[ 110]],  [[  95]],  [[-106]],  [[  87]],  [[  88]]]]> : tensor<4x8x1x1xi8>
    %pw_q = quant.scast %pw_i8 : tensor<4x8x1x1xi8> to tensor<4x8x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0034, 0.0029, 0.0024, 0.0033}>>
    %pw_w = quant.dcast %pw_q : tensor<4x8x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0034, 0.0029, 0.0024, 0.0033}>> to tensor<4x8x1x1xf32>
    %e1 = tensor.empty() : tensor<1x4x4x4xf32>
    %b1 = linalg.broadcast ins(%pw_bias : tensor<4xf32>) outs(%e1 : tensor<1x4x4x4xf32>) dimensions = [0, 2, 3]
    %pw = linalg.conv_2d_nchw_fchw {quantune.layer = "pw", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x1, %pw_w : tensor<1x8x4x4xf32>, tensor<4x8x1x1xf32>) outs(%b1 : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
    %q2 = quant.qcast %pw {quantune.point = "pw.output"} : tensor<1x4x4x4xf32> to tensor<1x4x4x4x!quant.uniform<i8:f32, 5.000000e-02:3>>
    %y = quant.dcast %q2 : tensor<1x4x4x4x!quant.uniform<i8:f32, 5.000000e-02:3>> to tensor<1x4x4x4xf32>
    %ex_bias = arith.constant dense<0.0625> : tensor<8xf32>
    %ex_i8 = arith.constant dense<[[[[  44]],  [[  78]],  [[-122]],  [[  79]]], [[[  -8]],  [[   4]],  [[  33]],  [[ -55]]], [[[ 122]],  [[-114]],  [[ -57]],  [[ -30]]], [[[  18]],  [[ -23]],  [[ -94]],  [[-116]]], [[[-127]],  [[-115]],  [[ -90]],  [[ 127]]], [[[ -79]],  [[  39]],  [[  64]],  [[ -68]]], [[[ -56]],  [[ -17]],  [[ -60]],  [[ 121]]], [[[ -82]],  [[ 101]],  [[  76]],  [[  88]]]]> : tensor<8x4x1x1xi8>
    %ex_q = quant.scast %ex_i8 : tensor<8x4x1x1xi8> to tensor<8x4x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0031, 0.0025, 0.0028, 0.0022, 0.0030, 0.0027, 0.0024, 0.0026}>>
    %ex_w = quant.dcast %ex_q : tensor<8x4x1x1x!quant.uniform<i8<-127:127>:f32:0, {0.0031, 0.0025, 0.0028, 0.0022, 0.0030, 0.0027, 0.0024, 0.0026}>> to tensor<8x4x1x1xf32>
    %e2 = tensor.empty() : tensor<1x8x4x4xf32>
    %b2 = linalg.broadcast ins(%ex_bias : tensor<8xf32>) outs(%e2 : tensor<1x8x4x4xf32>) dimensions = [0, 2, 3]
    %ex = linalg.conv_2d_nchw_fchw {quantune.layer = "ex", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%y, %ex_w : tensor<1x4x4x4xf32>, tensor<8x4x1x1xf32>) outs(%b2 : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
    %q3 = quant.qcast %ex {quantune.point = "ex.output"} : tensor<1x8x4x4xf32> to tensor<1x8x4x4x!quant.uniform<i8:f32, 4.000000e-02:-5>>
    %z = quant.dcast %q3 : tensor<1x8x4x4x!quant.uniform<i8:f32, 4.000000e-02:-5>> to tensor<1x8x4x4xf32>
    return %y, %z : tensor<1x4x4x4xf32>, tensor<1x8x4x4xf32>
  }
}
