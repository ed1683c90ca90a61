// A LoRA-adapted Linear in training mode: dropout on the adapter input, scale alpha/r, frozen base weight.
// The mask is fixed by re-seeding the generator before every forward, so finite differences apply.
#include <polyalpaca/polyalpaca.hpp>

#include "support/gradcheck.hpp"

namespace pa = polyalpaca;
using pa::testing::numeric_gradient;

namespace {
using Lora = pa::LoRA<3, 12, pa::site::Qkv>;  // scale 4
using Adapted = pa::Linear<pa::CpuEigen, double, pa::LinearSpec{.in = 6, .out = 5, .bias = true}, pa::site::Qkv, Lora>;

struct Fixture {
    pa::cpu::Context ctx;
    Adapted layer{"proj", 0.5, 0.3};
    pa::ParameterStore<pa::CpuEigen, double> store;
    pa::Matrix<double> x = pa::testing::random_matrix<double>(4, 6, 1);
    pa::Matrix<double> w = pa::testing::random_matrix<double>(4, 5, 2);

    Fixture() {
        std::vector<pa::Parameter<double>*> params;
        layer.visit_parameters([&](pa::Parameter<double>& p) { params.push_back(&p); });
        store.bind(params);
        store.initialise(ctx, 3);
        pa::Rng rng(4);
        for (auto* p : store.parameters())  // B starts at zero: move it so dA is not trivially zero
            for (pa::Index i = 0; i < p->size(); ++i) p->value[i] += 0.5 * rng.normal();
    }
    // sum(w * layer(x)) with the dropout mask drawn from seed 99 every time
    double loss() {
        pa::Rng rng(99);
        auto y = layer.forward(ctx, pa::view(std::as_const(x)), pa::Mode{true, &rng});
        double s = 0;
        for (pa::Index i = 0; i < y.size(); ++i) s += y.data[i] * w.data()[i];
        return s;
    }
};
}  // namespace

TEST_CASE("LoRA linear with adapter dropout: gradients of A, B and the input", "[gradcheck][lora]") {
    Fixture f;
    f.loss();
    pa::Matrix<double> dx = pa::Matrix<double>::Zero(4, 6);
    f.store.zero_grads(f.ctx);
    f.layer.backward(f.ctx, pa::view(std::as_const(f.w)), pa::view(dx));

    CHECK(f.layer.weight().grad == nullptr);  // frozen base
    for (auto* p : {&f.layer.branch().a(), &f.layer.branch().b()}) {
        std::vector<double> analytic(p->grad, p->grad + p->size());
        pa::testing::check_gradient(p->name.c_str(), analytic, [&] { return f.loss(); }, {p->value, std::size_t(p->size())},
                                    1e-8);
    }
    pa::testing::check_gradient("dx", pa::testing::span_of(std::as_const(dx)), [&] { return f.loss(); },
                                pa::testing::span_of(f.x), 1e-8);
}

TEST_CASE("LoRA dropout is active in training and off in evaluation", "[lora][dropout]") {
    Fixture f;
    pa::Rng a(1), b(2);
    auto const eval1 = pa::Matrix<double>(f.layer.forward(f.ctx, pa::view(std::as_const(f.x)), pa::Mode{}).map());
    auto const eval2 = pa::Matrix<double>(f.layer.forward(f.ctx, pa::view(std::as_const(f.x)), pa::Mode{}).map());
    auto const train1 = pa::Matrix<double>(f.layer.forward(f.ctx, pa::view(std::as_const(f.x)), pa::Mode{true, &a}).map());
    auto const train2 = pa::Matrix<double>(f.layer.forward(f.ctx, pa::view(std::as_const(f.x)), pa::Mode{true, &b}).map());
    CHECK((eval1 - eval2).cwiseAbs().maxCoeff() == 0.0);
    CHECK((train1 - train2).cwiseAbs().maxCoeff() > 1e-6);  // different masks
    CHECK((train1 - eval1).cwiseAbs().maxCoeff() > 1e-6);
}

TEST_CASE("LoRA output equals base plus scale * x A^T B^T", "[lora]") {
    Fixture f;
    auto const y = pa::Matrix<double>(f.layer.forward(f.ctx, pa::view(std::as_const(f.x)), pa::Mode{}).map());
    auto const W = f.layer.weight().values().map();
    auto const A = f.layer.branch().a().values().map();
    auto const B = f.layer.branch().b().values().map();
    Eigen::RowVectorXd const bias = f.layer.bias().values().map();
    pa::Matrix<double> expected = f.x * W.transpose();
    expected.rowwise() += bias;
    expected += 4.0 * f.x * A.transpose() * B.transpose();
    CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12);
}
