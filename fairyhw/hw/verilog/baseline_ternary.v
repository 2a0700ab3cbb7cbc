// Baseline: LANES real ternary (BitNet-style) MACs: weight code 0 = 0, 1 = +1, 3 = -1 (2 bits),
// one broadcast int8 activation per cycle, 22-bit accumulators.
module dut #(parameter LANES = 8, parameter W = 22) (
  input clk, input rst, input en, input clear,
  input signed [7:0] x,
  input [2*LANES-1:0] w,
  output [W*LANES-1:0] acc
);
  genvar l;
  generate for (l = 0; l < LANES; l = l + 1) begin : lane
    wire [1:0] c = w[2*l +: 2];
    wire signed [8:0] t = c[0] ? (c[1] ? -x : x) : 9'sd0;
    reg signed [W-1:0] a = 0;
    always @(posedge clk)
      if (rst || clear) a <= 0;
      else if (en) a <= a + t;
    assign acc[W*l +: W] = a;
  end endgenerate
endmodule
